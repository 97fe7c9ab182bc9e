#!/usr/bin/env bash
# The GPU check, one command, about five minutes on one GPU: install dlbench beside the machine's own CUDA build of
# PyTorch, run the gpu-marked tests and the training benchmarks, and print what they measured.
#   scripts/gpu_check.sh            (from the repository root, on a machine with a CUDA device)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), \
torch.cuda.get_device_name())"
# --no-deps keeps the machine's CUDA torch; the rest of dlbench's requirements are installed where missing.
python3 -m pip install -q --no-deps -e . -e plugins/linear_gaussian -e plugins/deep_vae
python3 -m pip install -q gin-config pluggy h5py scikit-learn scipy matplotlib tqdm pytest hypothesis 2>/dev/null \
  || echo "pip could not reach an index; using what is installed"
python3 -m pytest -m gpu -q -p no:cacheprovider tests/training/test_gpu.py
python3 -m dlbench bench deep_vae_stacking deep_vae_training linear_gaussian_adamw --quick
