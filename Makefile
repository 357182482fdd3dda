VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench deps dev-deps schema clean

run: deps            ## install what is missing, start RabbitMQ (+ nginx-rtmp), run the daemon
	scripts/run-local.sh

test: dev-deps       ## install, start services, lint, type-check, run every test
	scripts/start-rabbitmq.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

unit: dev-deps       ## the tests that need no services
	$(BIN)/pytest -q tests/test_units.py tests/test_program.py

bench: dev-deps      ## idle CPU, say -> speech on air, lite fps, MuseTalk ms/frame
	scripts/start-rabbitmq.sh
	$(BIN)/python -m bench.broadcast
	$(BIN)/python -m bench.faces
	$(BIN)/python -m bench.musetalk --runs 2

lint: dev-deps
	$(BIN)/ruff check src tests bench

typecheck: dev-deps
	$(BIN)/mypy

schema: deps         ## regenerate docs/messages.schema.json
	$(BIN)/avatarcast schema > docs/messages.schema.json

deps:
	scripts/install-deps.sh runtime

dev-deps:
	scripts/install-deps.sh dev

clean:
	rm -rf var recordings .pytest_cache .mypy_cache .ruff_cache
