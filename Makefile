VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench pipeline memory lipsync stills soak deps dev-deps schema config-doc clean

run: deps            ## install what is missing, start RabbitMQ (+ nginx-rtmp), run the daemon
	scripts/run-local.sh

test: dev-deps       ## install, start services, lint, type-check, run every test
	scripts/start-rabbitmq.sh
	$(BIN)/ruff check src tests bench harness
	$(BIN)/mypy
	$(BIN)/pytest -q --durations=15

unit: dev-deps       ## the tests that need no services
	$(BIN)/pytest -q tests/test_settings.py tests/media tests/onair/test_state.py tests/onair/test_clock.py \
	  tests/onair/test_program.py tests/infra/test_redact.py tests/test_layout.py tests/test_guarantees.py

MINUTES ?= 60

bench: dev-deps      ## the quick suite: cadence, drift, time to air, skip, idle CPU, renderers
	scripts/start-rabbitmq.sh
	$(BIN)/python -m bench quick

pipeline: dev-deps   ## what FFmpeg, nginx-rtmp and a client add to every cut (about 2 minutes)
	$(BIN)/python -m bench pipeline

memory: dev-deps     ## resident memory vs. the longest text at 480p/720p/1080p (about 4 minutes)
	scripts/start-rabbitmq.sh
	$(BIN)/python -m bench memory

lipsync: dev-deps    ## the mouth on the received stream vs. the speech, two landmarkers (3 minutes)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-bench.txt
	scripts/start-rabbitmq.sh
	$(BIN)/python -m bench lipsync

stills: dev-deps     ## README stills and a 10 s clip of the lite mouth, from the received stream
	scripts/start-rabbitmq.sh
	$(BIN)/python -m bench stills

soak: dev-deps       ## the stream for MINUTES (60) with a message every 20 s: drift, memory
	scripts/start-rabbitmq.sh
	$(BIN)/python -m bench soak --minutes $(MINUTES)

lint: dev-deps
	$(BIN)/ruff check src tests bench harness

typecheck: dev-deps
	$(BIN)/mypy

schema: deps         ## regenerate docs/messages.schema.json
	$(BIN)/avatarcast schema > docs/messages.schema.json

config-doc: deps     ## regenerate the configuration reference in README.md
	$(BIN)/python -m avatarcast.app.cli.configref --write README.md

deps:
	scripts/install-deps.sh runtime

dev-deps:
	scripts/install-deps.sh dev

clean:
	rm -rf var recordings .pytest_cache .mypy_cache .ruff_cache
