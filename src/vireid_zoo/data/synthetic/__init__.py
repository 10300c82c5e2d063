"""Small synthetic visible-infrared re-identification datasets in the real on-disk layouts.

None of the real datasets can be downloaded automatically, so the tests and the demo run on
synthetic trees written exactly as the real ones are (see ``docs/datasets.md``):

* SYSU-MM01 ([`make_sysu_mm01`][]):

  ```text
  root/cam1..cam6/<pid:04d>/<image:04d>.jpg      visible cams 1, 2, 4, 5; infrared 3, 6
  root/exp/train_id.txt, val_id.txt, test_id.txt  one line "1,4,7,..." (no newline)
  ```

* RegDB ([`make_regdb`][]):

  ```text
  root/Visible/<pid>/<gender>_<front|back>_v_<index:05d>_<pid>.bmp    RGB
  root/Thermal/<pid>/<gender>_<front|back>_t_<index:05d>_<pid>.bmp    8-bit grayscale
  root/idx/{train,test}_{visible,thermal}_{t}.txt    "<relative path> <label>", t = 1..10
  ```

  Each trial is its own seeded half/half split of the ids; labels are 0..N/2-1 in
  ascending pid order within the trial's training (or test) ids.

* LLCM ([`make_llcm`][]):

  ```text
  root/{train,test}_vis/cam1..cam9/<pid:04d>/<pid:04d>_c0K_s<seq>_f<frame>_vis.jpg
  root/{train,test}_nir/cam1,2,4..9/<pid:04d>/<pid:04d>_c0K_s<seq>_f<frame>_nir.jpg
  root/idx/train_vis.txt, train_nir.txt      "<relative path> <label 0..n_train-1>"
  root/idx/test_vis.txt, test_nir.txt        "<relative path> <pid>"
  root/idx/test_id.txt                       one line "2,5,9,..." (no newline)
  ```

Infrared images are single-channel files, visible ones RGB. Ids are split at random (test
ids interleaved with training ids). Not every id is seen by every camera: (id, camera)
folders are dropped at ``missing_camera_rate``, but every id keeps at least one visible and
one infrared camera. A dataset is written into a hidden sibling folder that is renamed to
``root`` only once complete, so an interrupted run never leaves a complete-looking tree.

Identity model. Each pid gets an [`Identity`][] from its own seeded generator: a
[`BodyShape`][] (stature, head size, shoulder and hip widths, leg length, limb
thickness), an upper and a lower [`Garment`][] (base and pattern [`Material`][],
pattern kind, frequency, phase, how much of the arms or legs it covers), skin, hair
(length, hairline), shoes and optional hat and bag. Garment colours come from a weighted
palette of common clothing colours, so, as in real crowds, many people share a colour. A
material's infrared intensity is drawn independently of its colour, so colour never
transfers across modalities: what a model can match is what both renderings share, i.e.
body shape, garment coverage, the geometry of the patterns (drawn in body-local
coordinates, so they move and scale with the body), accessories, and the layout of skin
(bright under infrared) and clothes.

Rendering. [`render_person`][] first draws the per-pixel part map (LIP label ids) and
then colours every pixel from it: visible images use colours, patterns and skin on a
camera-specific coloured background; infrared images use the materials' infrared
intensities, warm skin, medium hair and a darker, cooler background, with a vignette,
stronger blur and sensor-like noise. Each image varies in pose (position, lean, arm and leg
spread, facing the camera or away, mirroring), scale and background texture; each camera
([`CameraAppearance`][]) has its own background palette and texture, colour cast,
exposure, contrast, blur, noise and viewing distance. Everything is vectorised with numpy
over coordinate grids (1 to 2 ms per 128x64 image on one CPU core).

Modules: [`appearance`][] (the dataclasses), [`materials`][] and [`sampling`][]
(drawing identities, cameras and poses), [`figure`][] (the part map), [`render`][]
([`render_person`][]), [`checks`][], [`seeding`][] and [`writing`][] (shared
helpers), and one module per dataset writer ([`sysu_mm01`][], [`regdb`][],
[`llcm`][]).
"""

from __future__ import annotations

from vireid_zoo.data.synthetic.appearance import (
    PATTERNS,
    BodyShape,
    CameraAppearance,
    Garment,
    Identity,
    Material,
    Pose,
)
from vireid_zoo.data.synthetic.figure import LIP_LABELS
from vireid_zoo.data.synthetic.llcm import make_llcm
from vireid_zoo.data.synthetic.regdb import make_regdb
from vireid_zoo.data.synthetic.render import render_person
from vireid_zoo.data.synthetic.sampling import draw_pose, make_camera, make_identity
from vireid_zoo.data.synthetic.sysu_mm01 import make_sysu_mm01

__all__ = [
    "LIP_LABELS",
    "PATTERNS",
    "BodyShape",
    "CameraAppearance",
    "Garment",
    "Identity",
    "Material",
    "Pose",
    "draw_pose",
    "make_camera",
    "make_identity",
    "make_llcm",
    "make_regdb",
    "make_sysu_mm01",
    "render_person",
]
