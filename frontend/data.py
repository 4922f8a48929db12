"""`frontend.data`: Dataset, TensorDataset, DataLoader with shuffling and default collation
(like torch.utils.data, single process).

    >>> ds = data.TensorDataset(x, y)
    >>> for xb, yb in data.DataLoader(ds, batch_size=32, shuffle=True, generator=g):
    ...     ...
"""
import collections
import math

import numpy as np

from frontend._creation import default_generator
from frontend._tensor import Tensor, _wrap


class Dataset:
    """Map-style dataset: implement __getitem__ and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are tuples of the index-th rows of each tensor."""

    def __init__(self, *tensors):
        if any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.cumulative = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative[-1] if self.cumulative else 0

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        i = int(np.searchsorted(self.cumulative, index, side="right"))
        start = self.cumulative[i - 1] if i else 0
        return self.datasets[i][index - start]


def random_split(dataset, lengths, generator=None):
    """Splits into non-overlapping random subsets of the given lengths (or fractions)."""
    n = len(dataset)
    if all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = (generator or default_generator).rng.permutation(n).tolist()
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + length]))
        offset += length
    return out


def default_collate(batch):
    """Stacks a list of samples: tensors/arrays/numbers into tensors, recursing into tuples,
    lists and dicts."""
    first = batch[0]
    if isinstance(first, Tensor):
        return _wrap(np.stack([b._data for b in batch]))
    if isinstance(first, np.ndarray):
        return _wrap(np.stack(batch))
    if isinstance(first, (bool, np.bool_)):
        return _wrap(np.array(batch, dtype=np.bool_))
    if isinstance(first, (int, np.integer)):
        return _wrap(np.array(batch, dtype=np.int64))
    if isinstance(first, (float, np.floating)):
        return _wrap(np.array(batch, dtype=np.float64 if isinstance(first, float) else first.dtype))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {type(first)}")


class RandomSampler:
    """A random permutation of the dataset indices per epoch."""

    def __init__(self, data_source, generator=None):
        self.data_source, self.generator = data_source, generator

    def __iter__(self):
        return iter((self.generator or default_generator).rng.permutation(len(self.data_source)).tolist())

    def __len__(self):
        return len(self.data_source)


class SequentialSampler:
    """Indices 0..n-1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class DataLoader:
    """Iterates over batches of a dataset (single process).

    batch_size (None = no batching), shuffle (a fresh permutation per epoch from `generator`, or the
    global generator), drop_last, collate_fn (default: default_collate), sampler."""

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 generator=None, **kwargs):
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.generator = generator
        self.sampler = sampler or (RandomSampler(dataset, generator) if shuffle else SequentialSampler(dataset))
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn or (default_collate if batch_size is not None else (lambda x: x))
        self.num_workers = num_workers

    def _batches(self):
        if self.batch_sampler is not None:
            yield from self.batch_sampler
            return
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self):
        if self.batch_size is None:
            for i in self.sampler:
                yield self.collate_fn(self.dataset[i])
            return
        tensors = getattr(self.dataset, "tensors", None)
        for idx in self._batches():
            if tensors is not None and self.collate_fn is default_collate:
                # Fast path: one gather per tensor instead of per-sample indexing.
                rows = np.asarray(idx, dtype=np.int64)
                yield [_wrap(np.asarray(t._data[rows], order="C")) for t in tensors]
            else:
                yield self.collate_fn([self.dataset[i] for i in idx])

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
