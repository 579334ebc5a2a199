# Two commands on a fresh machine: `make run` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_ROLES := sales-agent,support-agent,engineer,ops

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml requirements-nlp.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements-nlp.txt
	touch $(STAMP)

install: $(STAMP)

# A demo key for `make run`, created once; it is stored hashed in keys.yaml and in clear in .demo-key.
keys.yaml: | $(STAMP)
	$(BIN)/gateway keys create --subject demo --roles $(DEMO_ROLES) > .demo-key

# The vault key for `make run`, drawn once: keyed placeholders (the default) and tokens stay the
# same across restarts, so a conversation's prompt keeps its text. A GATEWAY_VAULT_KEY set in the
# environment wins.
.vault-key:
	umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > .vault-key

run: $(STAMP) keys.yaml .vault-key
	@echo "Demo key (roles $(DEMO_ROLES)): $$(cat .demo-key)"
	@echo "Try: curl -s localhost:8080/w/lead_triage/v1/chat/completions -H \"authorization: Bearer $$(cat .demo-key)\" -H 'content-type: application/json' -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}'"
	@# Bytecode up to date, as an installed package has it: without it (PYTHONDONTWRITEBYTECODE)
	@# each start compiles ~250 modules from source, a quarter of a second (docs/performance.md).
	$(PY) -m compileall -q gateway
	GATEWAY_VAULT_KEY="$${GATEWAY_VAULT_KEY:-$$(cat .vault-key)}" $(BIN)/gateway serve

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

# Two pytest-xdist workers (a 2-core CI host): whole files spread over them, and the tests that
# take the machine or bound a time one after the other (tests/support/scheduling.py).
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

bench: $(STAMP)
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
