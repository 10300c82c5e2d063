"""Using trained networks outside training: ONNX export, gallery search, pictures."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.deploy.export import ExportParityError, check_onnx_parity, to_onnx
    from vireid_zoo.deploy.inference import load_inference_network
    from vireid_zoo.deploy.retrieval import SearchResult, embed_images, plot_search, search

__getattr__, __dir__, __all__ = attach(__name__, __file__)
