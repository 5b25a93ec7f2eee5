"""The one per-ROI prediction type (seagull.region_prediction.RegionPrediction), the per-image record,
region maps, and the package's lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from seagull.assess.items import assess_item, item_record
from seagull.assess.region_maps import region_map
from seagull.errors import ModelError, SchemaError
from seagull.region_prediction import DistortionPrediction, RegionPrediction
from seagull.roi import Roi

# One ROI of `seagull assess --json`, key by key and in this order.
ASSESS_KEYS = [
    "name",
    "bbox",
    "area",
    "quality",
    "quality_level",
    "quality_probs",
    "importance",
    "importance_level",
    "importance_probs",
    "distortions",
    "answers",
    "parsed",
]
DISTORTION_KEYS = ["type", "confidence", "present", "severity_level", "severity", "severity_probs"]


def assessed(name: str = "cup", quality: float = 0.8, importance: float = 0.3) -> RegionPrediction:
    probs = {"slight": 1.0, "mild": 0.0, "moderate": 0.0, "severe": 0.0, "extreme": 0.0}
    return RegionPrediction(
        name,
        (1, 2, 3, 4),
        12,
        quality=quality,
        quality_level="good",
        importance=importance,
        importance_level="important",
        distortions=[
            DistortionPrediction("blur", 0.7, True, "slight", 0.0, probs),
            DistortionPrediction("noise", 0.1, False, "slight", 0.0, probs),
        ],
    )


def test_assessment_json_has_the_assess_keys_only():
    d = assessed().to_dict()
    assert list(d) == ASSESS_KEYS and d["bbox"] == [1, 2, 3, 4]
    assert [list(x) for x in d["distortions"]] == [DISTORTION_KEYS] * 2
    # evaluation's fields appear once they are set
    d = RegionPrediction("r0", quality_uncalibrated=-41.2, raw={"brisque": 41.2}).to_dict()
    assert d["quality_uncalibrated"] == -41.2 and d["raw"] == {"brisque": 41.2}
    assert "importance_uncalibrated" not in d


def test_round_trip_and_legacy_keys():
    p = assessed()
    assert RegionPrediction.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    old = {"roi": "r3", "score": -2.0, "importance_score": 0.4, "distortions": [{"type": "blur"}]}
    back = RegionPrediction.from_dict(old)
    assert (back.name, back.quality_uncalibrated, back.importance_uncalibrated) == ("r3", -2.0, 0.4)
    assert back.type_set == ["blur"]  # old files list present distortions only
    with pytest.raises(SchemaError, match="quality level"):
        RegionPrediction("r0", quality_level="great")


def test_evaluation_reads_the_present_distortions():
    p = assessed()
    assert p.type_set == ["blur"] and p.severity_pairs == [("blur", "slight")]
    assert RegionPrediction("r0").type_set is None  # not answered
    assert RegionPrediction("r0", distortions=[]).type_set == []  # clean


def test_region_map_values_and_worst_first():
    results = [assessed("a", 0.9, 0.2), assessed("b", 0.4, 0.7), assessed("c", 0.6, 0.1)]
    by_quality = region_map(results, "quality")
    assert by_quality.values == [0.9, 0.4, 0.6] and by_quality.worst == [1, 2, 0]
    by_importance = region_map(results, "importance")
    assert by_importance.values == pytest.approx([0.2, 0.7, 0.1]) and by_importance.worst == [1, 0, 2]


class _Assessor:
    def __init__(self, quality: float) -> None:
        self.quality = quality

    def assess(self, image, rois, tasks, text):
        out = [assessed(r.name) for r in rois]
        for p in out:
            p.quality = self.quality  # set after construction, as the Assessor fills its results
        return out


def test_assess_item_is_the_record_of_cli_batch_and_serve():
    image = np.zeros((6, 8, 3), np.uint8)
    rois = [Roi(np.ones((6, 8), bool), "all")]
    item = assess_item(_Assessor(0.5), image, rois, "photo.jpg")
    assert list(item) == ["image", "width", "height", "rois"]
    assert (item["image"], item["width"], item["height"]) == ("photo.jpg", 8, 6)
    assert item == item_record("photo.jpg", image, [assessed("all", 0.5)])
    assert item["rois"][0]["quality"] == 0.5
    with pytest.raises(ModelError, match="non-finite"):
        assess_item(_Assessor(float("inf")), image, rois, "photo.jpg")


def test_parts_import_without_torch_and_the_public_api_stays():
    code = (
        "import sys, seagull, seagull.labels, seagull.records, seagull.region_prediction, seagull.splits\n"
        "import seagull.fileio, seagull.synth, seagull.assess.commands\n"
        "assert 'torch' not in sys.modules and 'seagull.model' not in sys.modules, 'eager import'\n"
        "from seagull import Assessor, Roi, RoiAssessment, RegionPrediction, __version__\n"
        "from seagull.assess import RoiAssessment as alias\n"
        "assert RoiAssessment is RegionPrediction is alias and Assessor.__name__ == 'Assessor'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
