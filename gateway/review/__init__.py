"""The review queue: requests and answers a policy sends to a human, and their outcome
(docs/console-and-review.md). The service is ``gateway.review.service.Reviews``; this package
root exports only the settings, which gateway/config.py and the policy models import."""

from __future__ import annotations

from gateway.review.spec import ReviewConfig, ReviewPolicy, effective_review

__all__ = ["ReviewConfig", "ReviewPolicy", "effective_review"]
