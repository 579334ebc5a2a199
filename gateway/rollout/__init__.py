"""Candidate policies on live traffic and the controls around them.

- ``assign``: the one place that decides which version handles a request (live, or the
  candidate for a canary's sticky share), and whether the workflow is paused;
- ``shadow`` and ``verdict``: the candidate judged beside the live policy, never acting;
- ``flags``: the runtime switches every instance obeys (pauses, aborted canaries);
- ``signals`` and ``judge``: a canary's windowed signals and the abort decision on them;
- ``service``: the poll that ties them together, the abort's record, metric and webhook;
- ``routes`` and ``events``: the admin API and the audit records of pauses and aborts.

Loading candidates is the policy package's (gateway/policy/candidates.py).
"""
