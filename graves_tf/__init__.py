"""graves_tf: "Generating Sequences With Recurrent Neural Networks" (Graves, 2013) in TensorFlow/Keras."""

__version__ = "0.1.0"

from graves_tf import _quiet  # noqa: E402

_quiet.import_tensorflow()  # without TensorFlow's C++ start-up lines (graves_tf/_quiet.py); --verbose keeps them

from graves_tf import layers, models  # noqa: E402
from graves_tf.layers import (  # noqa: E402
    GaussianWindow,
    MixtureDensityHead,
    PeepholeLSTMCell,
    SkipStack,
    SoftmaxHead,
)
from graves_tf.models import (  # noqa: E402
    HandwritingPredictor,
    HandwritingSynthesizer,
    TextPredictor,
)

__all__ = [
    "GaussianWindow",
    "HandwritingPredictor",
    "HandwritingSynthesizer",
    "MixtureDensityHead",
    "PeepholeLSTMCell",
    "SkipStack",
    "SoftmaxHead",
    "TextPredictor",
    "layers",
    "models",
]
