"""Quality checks on completed answers: the policy section, its compiled rules, the checks."""
