# dhlive: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
EXTRA ?= cpu
# The CPU and GPU onnxruntime wheels both install the `onnxruntime` module and overwrite each
# other, so each EXTRA gets its own virtualenv: .venv (cpu) or .venv-gpu. Never both in one.
VENV ?= $(if $(filter gpu,$(EXTRA)),.venv-gpu,.venv)
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := .stamps
# System packages: ffmpeg/ffprobe (encode, decode, read-back in tests), espeak-ng (speech
# fixtures), nginx + rtmp module (live streaming tests), sox (audio checks), PortAudio (mic
# input), PulseAudio with its ALSA plugin (a virtual microphone for the mic tests) and Chromium
# with its WebDriver (the WebRTC preview page tested in a real headless browser).
APT_PACKAGES := ffmpeg espeak-ng nginx libnginx-mod-rtmp sox libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins chromium chromium-driver

.PHONY: setup demo test bench model dist clean help
help:
	@echo "make demo   - set up, then render the default avatar speaking a bundled sample"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make bench  - set up, then run the benchmarks (prints figures)"
	@echo "make dist   - set up, then build the sdist and the wheel (models included) into dist/"
	@echo "make model  - rebuild lipsync-v2 from its data (CPU; end-to-end time not measured, see models/README.md)"
	@echo "EXTRA=gpu   - any target with onnxruntime-gpu, in its own .venv-gpu"

FACE_MODELS := models/face/face_detection_short_range.onnx models/face/face_landmark.onnx

setup: $(STAMPS)/apt $(STAMPS)/venv-$(EXTRA) models/baseline.onnx $(FACE_MODELS)
	@# bytecode for the checkout's package, as `pip install` of the wheel writes it: every dhlive
	@# process reads it instead of compiling ~40 modules again (~0.07 s of CPU per start, more
	@# where PYTHONDONTWRITEBYTECODE keeps Python from caching it itself). Only changed files.
	@$(PY) -m compileall -q dhlive_cli

# Installs the system packages when we are root and they are missing; otherwise says what to install.
$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "note: system packages missing ($$missing); ffmpeg falls back to the imageio-ffmpeg wheel, streaming tests will be skipped"; fi; \
	fi
	@touch $@

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMPS)/venv-$(EXTRA): $(VENV)/bin/python pyproject.toml
	@mkdir -p $(STAMPS)
	$(PIP) install -q -e ".[$(EXTRA),dev,webrtc]"
	$(PY) -m dhlive_cli.runtime_check
	@touch $@

models/baseline.onnx: models/build_baseline.py dhlive_cli/features.py | $(STAMPS)/venv-$(EXTRA)
	$(PY) models/build_baseline.py $@

# MediaPipe's face detector and face mesh, converted from the .tflite files in the mediapipe
# wheel (downloaded once into build/face, never installed). One run writes both files.
$(FACE_MODELS) &: dhlive_cli/face/convert.py dhlive_cli/face/tflite.py | $(STAMPS)/venv-$(EXTRA)
	$(PY) -m dhlive_cli.face.convert --out models/face --cache build/face

# The optional Ray extra (dhlive batch --ray): the tests start a real two-node Ray cluster and the
# benchmarks measure it, so test and bench install it; demo and plain setup do not need it.
# (The webrtc extra, aiortc for the browser preview, is in every checkout venv: `make demo` shows it.)
$(STAMPS)/farm-$(EXTRA): $(STAMPS)/venv-$(EXTRA) pyproject.toml
	$(PIP) install -q -e ".[$(EXTRA),dev,farm,webrtc]"
	@touch $@

demo: setup
	@mkdir -p out
	$(VENV)/bin/dhlive render presets/samples/hello.flac -o out/demo.mp4
	@echo
	@echo "demo video: $$(pwd)/out/demo.mp4"

# Two worker processes, a test file each at a time (module fixtures are built once), the longest
# files first (tests/conftest.py): the suite is written to pass with both cores busy.
# TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
test: setup $(STAMPS)/farm-$(EXTRA)
	$(VENV)/bin/pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The wheel is the product: models, presets, the default avatar, the sample and the converted
# face models inside it (dhlive_cli/resources.py finds them). .ci/run installs it elsewhere and uses it.
dist: setup
	rm -rf dist
	$(PY) -m build --outdir dist .

bench: setup $(STAMPS)/farm-$(EXTRA)
	$(PY) benchmarks/run_all.py

model:
	bash training/run_all.sh

clean:
	rm -rf $(STAMPS) out build dist *.egg-info
