"""Does a ROI's cost grow with the photo's pixels? Latency of the shipped model by photo size and ROI area.

For photos of 0.25, 1, 4 and 12 megapixels (the bundled photo upscaled, 3:2) and centred box ROIs of
1 %, 10 %, 50 % and 100 % of the area, all three tasks: the median latency with the photo already
decoded, and with decoding from JPEG bytes included. Each is compared with the reference case, a box
on the bundled 600x400 photo, measured in the same process. Target: the whole 12 MP photo (decode
excluded) at most 3x the reference. The Assessor works on a copy of a photo shrunk to ``max_side``
(1,024 px by default); ``unbounded`` repeats the decoded case with the photo's own pixels (``max_side``
None, how every photo was assessed before the bound), so both are measured in one run.

    python benchmarks/photo_size_speed.py [--model FOLDER] [--repeats 3] [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time

import numpy as np

from common import EXAMPLES, add_common_options, save_result

MEGAPIXELS = (0.25, 1.0, 4.0, 12.0)
AREAS = (0.01, 0.10, 0.50, 1.00)
TARGET_RATIO = 3.0  # the whole 12 MP photo vs a box on 600x400, decode excluded


def centred_box(h: int, w: int, area: float) -> list[int]:
    s = area**0.5
    bw, bh = max(1, round(w * s)), max(1, round(h * s))
    return [(w - bw) // 2, (h - bh) // 2, bw, bh]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    ap.add_argument("--repeats", type=int, default=3)
    add_common_options(ap, "photo_size_speed")
    a = ap.parse_args()
    megapixels, areas = (MEGAPIXELS, AREAS) if not a.smoke else ((0.25,), (0.10, 1.00))
    repeats = 1 if a.smoke else a.repeats

    import cv2
    from PIL import Image

    from seagull import Assessor, Roi, load_image
    from seagull.roi import box_to_mask

    assessor = Assessor(a.model)
    photo = load_image(EXAMPLES / "coffee.jpg")

    def assess(image, box):
        h, w = image.shape[:2]
        assessor.assess(image, [Roi(box_to_mask(box, h, w), name="roi")])

    ref_box = [150, 40, 330, 300]  # the README's cup on the 600x400 photo
    reference_ms = median_ms(lambda: assess(photo, ref_box), repeats)
    print(f"photo size vs latency on {platform.machine()} ({os.cpu_count()} CPUs), all three tasks, medians")
    print(f"reference: a box on the bundled 600x400 photo {reference_ms:.0f} ms")
    print(
        f"{'photo':>8} {'ROI area':>9} {'decoded ms':>11} {'x ref':>6} {'+decode ms':>11} {'x ref':>6}"
        f" {'unbounded ms':>13} {'x ref':>6}"
    )
    rows = []
    for mp in megapixels:
        w = round((mp * 1e6 * 1.5) ** 0.5)
        h = round(w / 1.5)
        big = cv2.resize(photo, (w, h), interpolation=cv2.INTER_CUBIC)
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, format="JPEG", quality=90)
        jpeg = buf.getvalue()
        for area in areas:
            box = centred_box(h, w, area)
            decoded = median_ms(lambda big=big, box=box: assess(big, box), repeats)
            with_decode = median_ms(lambda jpeg=jpeg, box=box: assess(load_image(jpeg), box), repeats)
            bound, assessor.max_side = assessor.max_side, None
            unbounded = median_ms(lambda big=big, box=box: assess(big, box), repeats)
            assessor.max_side = bound
            row = {
                "megapixels": mp,
                "size": [w, h],
                "roi_area": area,
                "decoded_ms": round(decoded, 1),
                "decoded_ratio": round(decoded / reference_ms, 2),
                "with_decode_ms": round(with_decode, 1),
                "with_decode_ratio": round(with_decode / reference_ms, 2),
                "unbounded_ms": round(unbounded, 1),
                "unbounded_ratio": round(unbounded / reference_ms, 2),
            }
            rows.append(row)
            print(
                f"{mp:>6.2f}MP {area:>8.0%} {decoded:>11.0f} {row['decoded_ratio']:>6.2f} "
                f"{with_decode:>11.0f} {row['with_decode_ratio']:>6.2f}"
                f" {unbounded:>13.0f} {row['unbounded_ratio']:>6.2f}"
            )
    whole = [r for r in rows if r["roi_area"] == 1.0 and r["megapixels"] == max(megapixels)]
    if whole:
        ratio = whole[0]["decoded_ratio"]
        print(f"whole {max(megapixels):g} MP photo vs reference: {ratio:.2f}x (target <= {TARGET_RATIO:g}x)")
    save_result(
        a,
        {
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
            "model": a.model or "shipped default",
            "repeats": repeats,
            "reference_ms": round(reference_ms, 1),
            "max_side": assessor.max_side,
            "target_ratio": TARGET_RATIO,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
