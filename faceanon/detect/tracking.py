"""Frame-to-frame identity of faces in a video (greedy IoU matching)."""
from __future__ import annotations

import numpy as np

from ..types import Face
from .base import box_iou


# What a track keeps from frame to frame besides its box: a refusal to paint a new face on it
# (pipeline.py) holds for the rest of the track, so a person does not flip between a new face
# and the fallback blur from one frame to the next.
CARRIED = ("render_refusal",)


def _carried(face: Face) -> dict:
    return {k: face.extra[k] for k in CARRIED if k in face.extra}


class IoUTracker:
    """Gives each face a ``track_id`` stable across frames. A track that loses its face keeps
    being anonymized at its last box for ``hold`` frames: a detector blinking off for a frame
    must not expose the face."""

    def __init__(self, iou: float = 0.3, hold: int = 5) -> None:
        self.iou, self.hold = iou, hold
        self._tracks: dict[int, tuple[Face, int]] = {}  # id -> (last face, frames missing)
        self._next = 0

    def update(self, faces: list[Face]) -> list[Face]:
        ids = list(self._tracks)
        unmatched = set(range(len(faces)))
        if ids and faces:
            iou = box_iou(np.stack([f.box for f in faces]), np.stack([self._tracks[i][0].box for i in ids]))
            while True:
                k = np.unravel_index(np.argmax(iou), iou.shape)
                if iou[k] < self.iou:
                    break
                fi, ti = int(k[0]), ids[int(k[1])]
                faces[fi].track_id = ti
                faces[fi].extra.update(_carried(self._tracks[ti][0]))
                self._tracks[ti] = (faces[fi], 0)
                unmatched.discard(fi)
                iou[fi, :] = -1
                iou[:, k[1]] = -1
        seen = {f.track_id for f in faces if f.track_id is not None}
        out = list(faces)
        for ti in ids:
            if ti in seen:
                continue
            last, missing = self._tracks[ti]
            if missing + 1 > self.hold:
                del self._tracks[ti]
            else:
                self._tracks[ti] = (last, missing + 1)
                out.append(Face(box=last.box, score=0.0, landmarks5=last.landmarks5, landmarks68=last.landmarks68,
                                track_id=ti, detector="held", extra={"held": True, **_carried(last)}))
        for fi in sorted(unmatched):
            faces[fi].track_id = self._next
            self._tracks[self._next] = (faces[fi], 0)
            self._next += 1
        return out
