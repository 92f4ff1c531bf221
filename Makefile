# Tiezheng: `make demo` and `make test` each do the whole setup first, and every step is idempotent.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ANVIL  := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
REPLAYWEB := node_modules/replaywebpage/.unpacked
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test lint unit bench clean debs browser-verifier

setup: $(VENV)/.installed $(ANVIL) $(REPLAYWEB) debs browser-verifier

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	@# merkletools is only a benchmark peer; its declared pysha3 dependency does not build on 3.11+.
	$(PY) -m pip install -q --no-deps merkletools==1.0.3
	@touch $@

# The exact version is pinned in package.json; no lock file, because npm writes one that lacks the
# other platforms' optional binaries and then refuses it on `npm ci`.
$(ANVIL): package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	@test -x $(ANVIL) || { echo "anvil binary missing after npm ci: $(ANVIL)" >&2; exit 1; }
	@touch $@

# The in-browser verifier (verifier/browser): built from source with esbuild, never committed.
BROWSER_DIST := verifier/browser/dist/verify.html
browser-verifier: $(BROWSER_DIST)
$(BROWSER_DIST): $(ANVIL) verifier/browser/build.mjs verifier/browser/page.html $(wildcard verifier/browser/src/*) verifier/default_trust.toml
	node verifier/browser/build.mjs

# ReplayWeb.page (the replay test's viewer) cannot be `npm install`ed: 2.5.x asks for a warcio
# version that is not on the registry. Its ui.js and sw.js are self-contained bundles, so the
# tarball of the version pinned in package.json ("unpacked") is fetched with `npm pack`, checked
# against the pinned integrity, and unpacked. After npm install, which prunes unknown folders.
$(REPLAYWEB): package.json $(ANVIL)
	@rm -rf node_modules/replaywebpage && mkdir -p node_modules/replaywebpage
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	spec=$$(node -p 'const u = require("./package.json").unpacked.replaywebpage; "replaywebpage@" + u.version'); \
	want=$$(node -p 'require("./package.json").unpacked.replaywebpage.integrity'); \
	npm pack --silent --pack-destination "$$tmp" "$$spec" >/dev/null; \
	got=$$(node -e 'const c = require("crypto"), fs = require("fs"); \
	  process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' \
	  "$$tmp"/replaywebpage-*.tgz); \
	[ "$$got" = "$$want" ] || { echo "$$spec: integrity $$got, expected $$want" >&2; exit 1; }; \
	files=$$(node -p 'require("./package.json").unpacked.replaywebpage.files.map(f => "package/" + f).join(" ")'); \
	tar -xzf "$$tmp"/replaywebpage-*.tgz -C node_modules/replaywebpage --strip-components=1 $$files
	@touch $@

# Debian packages: the browser for capture, a CJK font for the bilingual PDF certificate, poppler to
# look at that PDF as a person would, chrony (an NTP server for the clean-environment record's
# tests), unzip (an independent zip reader for the one-reading tests), and SoftHSM2 (a PKCS#11
# token) with OpenSC's pkcs11-tool for the signer's tests, ffmpeg (the session video, remuxing
# recorded live streams, and making the live test streams), and tinyproxy (a real HTTP proxy on
# loopback for the egress tests).
DEBS := chromium fonts-wqy-microhei poppler-utils chrony unzip softhsm2 opensc ffmpeg tinyproxy
debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

demo: setup
	$(VENV)/bin/tiezheng demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy verifier
	$(VENV)/bin/mypy evidence anchor api

unit: setup
	$(VENV)/bin/pytest

test: setup lint unit

bench: setup
	$(PY) benchmarks/merkle.py
	$(PY) benchmarks/seal.py
	PYTHONPATH=. $(PY) benchmarks/verify.py
	$(PY) benchmarks/capture.py
	$(PY) benchmarks/stream.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
