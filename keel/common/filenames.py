"""Every file and folder name keel writes: archive members and the serialization directory.

One set, so a reader and a writer can never disagree about where something lives.
"""

from __future__ import annotations

# -- archive members (model.tar.gz) -----------------------------------------------------------
ARCHIVE_NAME = "model.tar.gz"
MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
VOCABULARY_DIR = "vocabulary"
GOLDEN_FILE = "golden/predictions.json"
CODE_DIR = "code"
RESOURCES_DIR = "resources"
SIGNATURE_SUFFIX = ".sig"

# -- the serialization directory of a training run --------------------------------------------
# config.json and vocabulary/ have the same names as in the archive.
ENV_FILE = "env.json"
LOG_FILE = "out.log"
METRICS_FILE = "metrics.json"
EPOCH_METRICS_FILE = "metrics_epoch_{epoch}.json"
BEST_WEIGHTS_FILE = "best.safetensors"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_MODEL_FILE = "model.safetensors"
CHECKPOINT_STATE_FILE = "training_state.pt"

# -- signing keys -------------------------------------------------------------------------------
PRIVATE_KEY_NAME = "keel_signing.key"
PUBLIC_KEY_NAME = "keel_signing.pub"
