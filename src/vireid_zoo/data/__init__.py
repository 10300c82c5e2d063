"""Dataset readers, the paired identity sampler, transforms and LightningDataModules."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.core.records import Modality, Sample
    from vireid_zoo.data.cache import CachedArrays, ImageCache, ImageCacheError
    from vireid_zoo.data.datamodule import (
        LLCMDataModule,
        ManifestDataModule,
        RegDBDataModule,
        SYSUMM01DataModule,
        VIReIDDataModule,
    )
    from vireid_zoo.data.datasets import EvaluationDataset, PairedTrainDataset, load_image
    from vireid_zoo.data.errors import (
        DatasetCountWarning,
        DatasetFormatError,
        DatasetNotFoundError,
        ImageDecodeError,
    )
    from vireid_zoo.data.folder import ManifestDataset
    from vireid_zoo.data.llcm import LLCM
    from vireid_zoo.data.parsing import (
        ParsingMapError,
        ParsingMapsNotFoundError,
        PartGrouping,
        PartMaps,
    )
    from vireid_zoo.data.regdb import RegDB
    from vireid_zoo.data.sampler import CrossModalityIdentitySampler
    from vireid_zoo.data.sysu_mm01 import SYSUMM01
    from vireid_zoo.data.transforms import (
        RandomChannelSelection,
        build_test_transform,
        build_train_transform,
    )
    from vireid_zoo.data.verify import Verification, decode_images, verify_dataset

__getattr__, __dir__, __all__ = attach(__name__, __file__)
