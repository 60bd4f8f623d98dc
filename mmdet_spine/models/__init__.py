"""All models of mmdet-spine; importing registers them into ``mmdet.registry.MODELS``."""
from . import layers  # noqa: F401
from . import losses  # noqa: F401
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from . import dense_heads  # noqa: F401
from . import roi_heads  # noqa: F401
from . import detectors  # noqa: F401
from . import utils  # noqa: F401
