"""Candidate policies on live traffic: the per-request judge that runs beside the steps
(``shadow``) and the verdict it records (``verdict``). Loading candidates is the policy
package's (gateway/policy/candidates.py); rollout, canaries and promotion build on this."""
