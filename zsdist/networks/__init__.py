"""The networks (nn.Modules) of the search spaces, imported only by `SearchSpace.build`: a space's encoding
(zsdist.spaces) answers ids, strings, sampling and mutation without importing torch or timm."""
