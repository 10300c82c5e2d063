"""Dataset readers, the paired identity sampler, transforms and LightningDataModules."""

from vireid_zoo.data.cache import CachedArrays, ImageCache, ImageCacheError
from vireid_zoo.data.datamodule import (
    LLCMDataModule,
    ManifestDataModule,
    RegDBDataModule,
    SYSUMM01DataModule,
    VIReIDDataModule,
)
from vireid_zoo.data.datasets import EvaluationDataset, PairedTrainDataset, load_image
from vireid_zoo.data.folder import ManifestDataset
from vireid_zoo.data.llcm import LLCM
from vireid_zoo.data.parsing import (
    ParsingMapError,
    ParsingMapsNotFoundError,
    PartGrouping,
    PartMaps,
)
from vireid_zoo.data.records import (
    DatasetCountWarning,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageDecodeError,
    Modality,
    Sample,
)
from vireid_zoo.data.regdb import RegDB
from vireid_zoo.data.sampler import CrossModalityIdentitySampler
from vireid_zoo.data.sysu_mm01 import SYSUMM01
from vireid_zoo.data.transforms import (
    RandomChannelSelection,
    build_test_transform,
    build_train_transform,
)

__all__ = [
    "LLCM",
    "SYSUMM01",
    "CachedArrays",
    "CrossModalityIdentitySampler",
    "DatasetCountWarning",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "EvaluationDataset",
    "ImageCache",
    "ImageCacheError",
    "ImageDecodeError",
    "LLCMDataModule",
    "ManifestDataModule",
    "ManifestDataset",
    "Modality",
    "PairedTrainDataset",
    "ParsingMapError",
    "ParsingMapsNotFoundError",
    "PartGrouping",
    "PartMaps",
    "RandomChannelSelection",
    "RegDB",
    "RegDBDataModule",
    "SYSUMM01DataModule",
    "Sample",
    "VIReIDDataModule",
    "build_test_transform",
    "build_train_transform",
    "load_image",
]
