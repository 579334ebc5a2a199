"""Observability: Prometheus metrics, the access log, traces, behaviour and drift per workflow.

Everything here reads what a request recorded through ``RequestContext.enter`` (the one hook)
and its context at the end (gateway/observe/observer.py); the steps know nothing of it. This
package's ``__init__`` imports nothing, so ``gateway.config`` can read ``observe.config``.
"""
