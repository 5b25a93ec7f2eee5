"""``seagull.create_metric``: every registered metric and the shipped model as one callable (pyiqa's shape)."""

from __future__ import annotations

import numpy as np
import pytest

import seagull
from seagull.errors import ConfigError, RoiError
from seagull.metrics import nr
from seagull.metrics.factory import list_metrics

EXAMPLE = "examples/coffee.jpg"


def _blurred(image: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(4)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return seagull.load_image(EXAMPLE)


def test_every_registered_metric_is_reachable_with_its_metadata():
    names = list_metrics()
    assert set(nr.list_nr_metrics()) <= set(names)
    assert {"ssim", "haarpsi"} <= set(names)
    for name in names:
        m = seagull.create_metric(name)
        assert m.name == name
        assert isinstance(m.lower_better, bool)
        assert m.metric_mode in ("NR", "FR")
        assert len(m.score_range) == 2
    assert seagull.create_metric("niqe").lower_better is True
    assert seagull.create_metric("ssim").lower_better is False


def test_nr_metric_on_whole_image_equals_the_registered_function(photo):
    assert seagull.create_metric("brisque")(photo) == pytest.approx(nr.brisque(photo))
    assert seagull.create_metric("piqe")(EXAMPLE) == pytest.approx(nr.piqe(photo))  # a path works too


def test_roi_reads_the_region(photo):
    mask = np.zeros(photo.shape[:2], bool)
    mask[50:250, 100:400] = True
    crop = photo[50:250, 100:400]
    assert seagull.create_metric("brisque")(photo, roi=mask) == pytest.approx(nr.brisque(crop))
    sharpness = seagull.create_metric("laplacian_variance")
    assert sharpness(photo, roi=mask) == pytest.approx(nr.laplacian_variance(photo, mask))


def test_fr_metric_needs_a_reference_and_orders_damage(photo):
    ssim = seagull.create_metric("ssim")
    with pytest.raises(ConfigError, match="reference"):
        ssim(photo)
    assert ssim(photo, reference=photo) == pytest.approx(1.0, abs=1e-4)
    assert ssim(_blurred(photo), reference=photo) < 0.95
    with pytest.raises(ConfigError, match="no-reference"):
        seagull.create_metric("niqe")(photo, reference=photo)


def test_bad_names_and_rois_are_clear_errors(photo):
    with pytest.raises(ConfigError, match="unknown metric 'nope'.*niqe"):
        seagull.create_metric("nope")
    with pytest.raises(RoiError, match="mask"):
        seagull.create_metric("niqe")(photo, roi=np.zeros((3, 3), bool))
    with pytest.raises(RoiError, match="empty"):
        seagull.create_metric("niqe")(photo, roi=np.zeros(photo.shape[:2], bool))
    with pytest.raises(ConfigError, match="task"):
        seagull.create_metric("seagull", task="distortion")


def test_shipped_model_as_a_metric(photo):
    m = seagull.create_metric("seagull")
    assert (m.lower_better, m.score_range, m.metric_mode) == (False, (0.0, 1.0), "NR")
    sharp, blurred = m(photo), m(_blurred(photo))
    assert 0.0 <= blurred < sharp <= 1.0
    # the same number the Assessor gives for the whole image as the ROI
    (r,) = m.assessor.assess(photo, [seagull.Roi(np.ones(photo.shape[:2], bool))], tasks=("quality",))
    assert sharp == pytest.approx(r.quality)
