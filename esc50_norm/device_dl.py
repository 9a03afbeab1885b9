"The fast path: a fastai DataLoader over clips that already sit on the training device"
from __future__ import annotations

import torch
from fastai.data.all import TensorCategory, TfmdDL

from .audio import AudioTensor

__all__ = ['DeviceDL']


class DeviceDL(TfmdDL):
    "A `TfmdDL` whose batches are index slices of `clips`/`labels` on the device: no per-item work, no host copies"
    # `after_item` is not used by its own batches: it is what a per-item `new` DataLoader (`test_dl`, `predict`) applies
    def __init__(self, dataset=None, clips=None, labels=None, sr: int = 16000, bs: int = 64, shuffle: bool = False,
                 drop_last: bool = False, device=None, index=None, **kwargs):
        "`index`: this DataLoader's items as positions in `clips` (None: all): DataLoaders share one clips tensor"
        if clips is None or labels is None: raise ValueError("DeviceDL needs `clips` and `labels` tensors")
        n = len(clips) if index is None else len(index)
        if n != len(labels): raise ValueError(f"DeviceDL: {n} clips but {len(labels)} labels")
        device = torch.device(device) if device is not None else clips.device
        self.clips, self.labels, self.sr = clips.to(device), labels.to(device).long(), sr
        self.index = None if index is None else torch.as_tensor(index, dtype=torch.long).to(device)
        kwargs.pop('num_workers', None)
        kwargs['indexed'] = True
        super().__init__(dataset, bs=bs, shuffle=shuffle, drop_last=drop_last, num_workers=0, device=device, n=n,
                         **kwargs)

    def create_batches(self, samps):
        "Slice the device tensors with this epoch's (possibly shuffled) order, moved to the device once"
        order = torch.as_tensor(list(samps), dtype=torch.long).to(self.clips.device, non_blocking=True)
        pos = order if self.index is None else self.index[order]
        for i in range(0, len(order), self.bs):
            j = order[i:i + self.bs]
            if self.drop_last and len(j) < self.bs: break
            yield AudioTensor(self.clips[pos[i:i + self.bs]], sr=self.sr), TensorCategory(self.labels[j])

    def new(self, dataset=None, cls=None, **kwargs):
        "Same clips for the same dataset, or new clips; another dataset without clips gets a per-item `TfmdDL`"
        # e.g. those of `test_dl` and `export`
        if 'clips' in kwargs: return super().new(dataset, cls, **{'sr': self.sr, **kwargs})
        if dataset is None or dataset is self.dataset:
            return super().new(dataset, cls, clips=self.clips, labels=self.labels, sr=self.sr, index=self.index,
                               **kwargs)
        return super().new(dataset, cls or TfmdDL, **kwargs)
