"""Values that test modules need at import time (in parametrize lists), where a fixture cannot reach."""

NB201_EXAMPLE = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|"  # id 9009
