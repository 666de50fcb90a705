"""What the predictor and the monitor share, and nothing else.

The feature schema, the bodies that cross between them (inference records, labels, the
version registration), the keys of a packaged model's metadata, and the one error shape of
both HTTP APIs. `bentos` (the model side) and `monitor` depend on this package and never on
each other, so either image can be built from its own side plus `contract/`.
"""
