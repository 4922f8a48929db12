"""Alias of `frontend.data`, so `torch.utils.data` imports port by renaming the package."""
from frontend.data import (ConcatDataset, DataLoader, Dataset, RandomSampler, SequentialSampler, Subset,  # noqa: F401
                           TensorDataset, default_collate, random_split)
