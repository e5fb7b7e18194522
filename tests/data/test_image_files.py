"""Image folders streamed from disk: the same pixels and batches as reading them whole, the
train/ and test/ sub-folder split, files that fail to decode, and memory flat in the folder
size."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tripletlab.data import (
    ImageFiles,
    PKSampler,
    ShuffledBatches,
    load_dataset,
    read_image_folder,
    scan_image_folder,
)

CLASSES = ("circle", "square", "star", "stripe")


def write_shapes(root, per_class=6, sizes=((32, 32), (40, 24)), mode="RGB"):
    """Coloured shapes, one colour per class; sizes alternate (so resizing is exercised)."""
    rng = np.random.default_rng(7)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            width, height = sizes[i % len(sizes)]
            image = Image.new("RGB", (width, height), tuple(rng.integers(0, 80, 3).tolist()))
            x0, y0 = rng.integers(0, 12, 2).tolist()
            ImageDraw.Draw(image).ellipse([x0, y0, x0 + 14, y0 + 14],
                                          fill=(60 * c + 40, 200 - 40 * c, 90))
            image.convert(mode).save(root / name / f"{i:02d}.png")
    return root


def opencv_reference(root, size=(32, 32)):
    """The whole-folder reader written out: sorted classes and files, OpenCV's decode (BGR,
    turned to RGB), its bilinear resize (these shapes shrink by less than 2x), / 255 in
    float32."""
    images, labels = [], []
    for label, name in enumerate(sorted(CLASSES)):
        for path in sorted((root / name).iterdir()):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image.shape[:2] != size:
                image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            images.append(image[..., ::-1])
            labels.append(label)
    x = (np.stack(images).astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return x, np.asarray(labels, np.int64)


def test_streamed_batches_are_bitwise_those_of_the_whole_array(tmp_path):
    root = write_shapes(tmp_path / "shapes")
    x_ref, y_ref = opencv_reference(root)
    data = load_dataset("image-folder", image_folder=root, seed=3, test_fraction=0.25)
    assert isinstance(data.x_train, ImageFiles) and data.x_train.shape[1:] == (32, 32, 3)
    assert data.split == "stratified by class, seed=3, test_fraction=0.25"

    from sklearn.model_selection import train_test_split

    xr_train, xr_test, yr_train, yr_test = train_test_split(
        x_ref, y_ref, test_size=0.25, random_state=3, stratify=y_ref)
    np.testing.assert_array_equal(data.y_train, yr_train)
    # bitwise: the same float32 bits, not merely close
    assert np.asarray(data.x_test).tobytes() == xr_test.tobytes()

    for make in (lambda x: PKSampler(x, data.y_train, 3, 2, seed=5),
                 lambda x: ShuffledBatches(x, data.y_train, 5, seed=5)):
        streamed, in_memory = make(data.x_train), make(xr_train)
        for epoch in (0, 1):
            streamed.set_epoch(epoch)
            in_memory.set_epoch(epoch)
            for i in range(len(streamed)):
                (xs, ys), (xm, ym) = streamed[i], in_memory[i]
                assert xs.dtype == np.float32 and xs.tobytes() == xm.tobytes()
                np.testing.assert_array_equal(ys, ym)

    x_read, y_read, names = read_image_folder(root)
    assert names == tuple(sorted(CLASSES)) and x_read.tobytes() == x_ref.tobytes()
    np.testing.assert_array_equal(y_read, y_ref)


def test_image_files_indexing(tmp_path):
    root = write_shapes(tmp_path / "shapes", per_class=3)
    files, y, _ = scan_image_folder(root, image_size=(8, 12), color_mode="grayscale")
    assert files.shape == (12, 8, 12, 1) and files.dtype == np.float32 and len(files) == 12
    whole = np.asarray(files)
    assert files[-1].shape == (8, 12, 1) and files[-1].tobytes() == whole[11].tobytes()
    assert files[2:9:3].tobytes() == whole[2:9:3].tobytes()
    assert files[np.array([5, 0, 5])].tobytes() == whole[[5, 0, 5]].tobytes()
    assert files[y == 1].tobytes() == whole[y == 1].tobytes()
    assert files[1, 2:4].tobytes() == whole[1, 2:4].tobytes()
    subset = files.subset([4, 2])
    assert subset.paths == (files.paths[4], files.paths[2])
    assert pickle.loads(pickle.dumps(subset))[:].tobytes() == whole[[4, 2]].tobytes()
    with pytest.raises(IndexError, match=r"\[-12, 12\)"):
        files[12]
    with pytest.raises(TypeError, match="index array"):
        files[np.zeros((2, 2), int)]


def test_train_and_test_sub_folders_give_the_split(tmp_path):
    root = tmp_path / "split"
    write_shapes(root / "train", per_class=4)
    write_shapes(root / "test", per_class=2)
    data = load_dataset("image-folder", image_folder=root, seed=0)
    assert data.split == "the train/ and test/ sub-folders"
    assert len(data.y_train) == 16 and len(data.y_test) == 8
    assert all("/train/" in p for p in data.x_train.paths)
    assert all("/test/" in p for p in data.x_test.paths)
    np.testing.assert_array_equal(data.y_test, np.repeat(np.arange(4), 2))

    (root / "test" / "star").rename(root / "test" / "moon")
    with pytest.raises(ValueError, match=r"only in train: \['star'\]; only in test: \['moon'\]"):
        load_dataset("image-folder", image_folder=root)

    # two classes that happen to be called train and test, images directly inside
    plain = tmp_path / "plain"
    for name in ("train", "test"):
        (plain / name).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (4, 4), 40 * i).save(plain / name / f"{i}.png")
    assert load_dataset("image-folder", image_folder=plain, test_fraction=0.5).class_names == (
        "test", "train")


def test_files_that_fail_to_decode_are_named_once(tmp_path):
    root = write_shapes(tmp_path / "shapes", per_class=3)
    (root / "circle" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"Skipped 1 file.*circle/notes\.txt"):
        files, _, _ = scan_image_folder(root)
    # a file whose header reads but whose pixels are cut off (or damaged later)
    broken = root / "square" / "01.png"
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.warns(UserWarning) as caught:
        first = files[:]
        again = files[3:6]
    messages = [str(w.message) for w in caught if "01.png" in str(w.message)]
    assert len(messages) == 1 and "replaced by a black image" in messages[0]
    assert list(files.failed) == [str(broken)]
    row = files.paths.index(str(broken))
    assert not first[row].any() and not again[row - 3].any() and first[0].any()

    (root / "circle" / "notes.txt").unlink()
    with pytest.raises(ValueError, match=r"square/01\.png"):
        read_image_folder(root)


def test_large_jpegs_are_decoded_at_a_reduced_scale_in_both_readers(tmp_path):
    rng = np.random.default_rng(11)
    for name, size in (("large", (1024, 768)), ("small", (200, 200))):
        for c in range(2):
            (tmp_path / name / f"c{c}").mkdir(parents=True)
            noise = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
            image = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)
            ImageDraw.Draw(image).ellipse([40, 30, size[0] // 2, size[1] // 2], fill=(200, 30, 90))
            image.save(tmp_path / name / f"c{c}" / "0.jpg", quality=90)

    def reference(path, draft):
        flags = cv2.IMREAD_REDUCED_COLOR_8 if draft else cv2.IMREAD_COLOR
        image = cv2.imread(str(path), flags)
        # shrunk by 2x or more both ways: area averaging, not bilinear sampling
        return cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA)[..., ::-1]

    for name in ("large", "small"):
        files, _, _ = scan_image_folder(tmp_path / name, image_size=(48, 64))
        streamed = files[:]
        assert streamed.tobytes() == read_image_folder(tmp_path / name,
                                                       image_size=(48, 64))[0].tobytes()
        for row, path in enumerate(files.paths):
            got = np.rint(streamed[row] * 255).astype(np.uint8)
            full = reference(path, draft=False)
            if name == "small":  # under 4x the target: the full-scale decode
                np.testing.assert_array_equal(got, full)
                continue
            # 1024x768 for 64x48: libjpeg decodes at 1/8 (128x96), then the area resize
            assert cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8).shape == (96, 128, 3)
            np.testing.assert_array_equal(got, reference(path, draft=True))
            difference = np.abs(got.astype(int) - full)
            assert difference.any() and difference.mean() < 2 and difference.max() <= 24


def test_formats_opencv_cannot_read_are_decoded_by_pillow_and_resized_alike(tmp_path):
    """TGA and ICO: OpenCV returns nothing, so Pillow decodes; the resize is OpenCV's as for
    every other file, and both readers agree."""
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for c, fmt in enumerate(("TGA", "PNG")):
        (tmp_path / f"c{c}").mkdir()
        Image.fromarray(noise).save(tmp_path / f"c{c}" / f"0.{fmt.lower()}", fmt)
    assert cv2.imread(str(tmp_path / "c0" / "0.tga")) is None  # the case under test
    files, _, _ = scan_image_folder(tmp_path, image_size=(24, 32))
    expected = cv2.resize(noise, (32, 24), interpolation=cv2.INTER_LINEAR)
    for row in range(2):  # the TGA (Pillow) and the PNG (OpenCV): the same pixels
        np.testing.assert_array_equal(np.rint(files[row] * 255).astype(np.uint8), expected)
    assert files[:].tobytes() == read_image_folder(tmp_path, image_size=(24, 32))[0].tobytes()


def test_exif_orientation_is_ignored_as_keras_does(tmp_path):
    """A JPEG tagged "rotate 90°" (EXIF orientation 6) keeps its stored layout, as
    ``image_dataset_from_directory`` gives it: landscape stays landscape."""
    image = Image.new("RGB", (40, 20), (250, 10, 10))
    ImageDraw.Draw(image).rectangle([0, 0, 9, 19], fill=(10, 10, 250))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6
    for c in range(2):
        (tmp_path / f"c{c}").mkdir()
        image.save(tmp_path / f"c{c}" / "0.jpg", quality=95, exif=exif)
    files, _, _ = scan_image_folder(tmp_path)
    assert files.shape == (2, 20, 40, 3)
    left, right = files[0][:, :8].mean(axis=(0, 1)), files[0][:, -8:].mean(axis=(0, 1))
    assert left[2] > 0.8 > 0.2 > left[0] and right[0] > 0.8 > 0.2 > right[2]


_MEASURE = textwrap.dedent("""
    import sys
    import numpy as np
    from tripletlab.data import load_dataset, read_image_folder
    import PIL.PngImagePlugin, sklearn.model_selection  # imported before the baseline

    def peak_kib():  # the high-water mark of this process (ru_maxrss survives exec on Linux)
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("VmHWM")).split()[1])

    before = peak_kib()
    if sys.argv[2] == "stream":
        data = load_dataset("image-folder", image_folder=sys.argv[1], image_size=128)
        x = data.x_train
    else:
        x, _, _ = read_image_folder(sys.argv[1], image_size=128)
    total = 0.0
    for start in range(0, len(x), 16):
        total += float(x[start:start + 16].sum())
    print((peak_kib() - before) / 1024)
""")


def _peak_growth_mib(folder, how):
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(folder), how],
                            capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    def folder(count):
        root = tmp_path / str(count)
        for c in range(4):
            (root / f"c{c}").mkdir(parents=True)
            for i in range(count // 4):
                Image.new("RGB", (16, 16), (c * 60, i % 256, 9)).save(root / f"c{c}" / f"{i}.png")
        return root

    small, large = folder(40), folder(400)
    # 400 images of 128 x 128 x 3 float32 are 75 MiB: a whole-array reader grows by that much
    # more than with 40; streaming holds a batch of 16 (3 MiB) and 400 paths.
    grow_small = _peak_growth_mib(small, "stream")
    grow_large = _peak_growth_mib(large, "stream")
    whole_large = _peak_growth_mib(large, "whole")
    assert whole_large - grow_small > 60, (whole_large, grow_small)  # the test can fail
    assert grow_large - grow_small < 15, (grow_small, grow_large)


def test_worker_threads_draw_the_batches_of_a_sequential_run(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from tripletlab.train.resume import FitEpochBatches

    root = write_shapes(tmp_path / "shapes", per_class=5)
    files, y, _ = scan_image_folder(root)

    class SlowDraw(ShuffledBatches):  # widens the window in which threads could mix epochs
        def batch_indices(self, index):
            time.sleep(0.02)
            return super().batch_indices(index)

    def view():
        # 3 fit steps per epoch over a sampler epoch of 5 batches: fit epochs straddle two
        return FitEpochBatches(SlowDraw(files, y, 4, seed=2, workers=4), 3)

    sequential, threaded = view(), view()
    assert threaded.workers == 4 and not threaded.use_multiprocessing
    expected, got = {}, {}
    for fit_epoch in range(4):
        sequential.fit_epoch = threaded.fit_epoch = fit_epoch
        for i in range(3):
            expected[fit_epoch, i] = sequential[i]
        with ThreadPoolExecutor(4) as pool:
            futures = {i: pool.submit(threaded.__getitem__, i) for i in (2, 0, 1)}
            for i, future in futures.items():
                got[fit_epoch, i] = future.result()
    for key, (x_expected, y_expected) in expected.items():
        assert got[key][0].tobytes() == x_expected.tobytes()
        np.testing.assert_array_equal(got[key][1], y_expected)


def test_embedding_in_chunks_gives_the_embeddings_of_one_predict_call(tmp_path, monkeypatch):
    import keras

    from tripletlab import inference

    root = write_shapes(tmp_path / "shapes", per_class=9)
    files, _, _ = scan_image_folder(root, image_size=24)
    model = keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    whole = np.asarray(keras.ops.convert_to_numpy(
        model.predict(inference.InputBatches(files, 4), verbose=0)))
    monkeypatch.setattr(inference, "EMBED_CHUNK_BATCHES", 2)  # 36 images: 5 chunks of 8
    chunked = inference.embed(model, files, batch_size=4)
    assert chunked.shape == (36, 5)
    np.testing.assert_array_equal(chunked, whole)
