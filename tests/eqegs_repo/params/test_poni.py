"""pyFAI .poni files: read, write, import into geometry spice, export from a sample."""
import hashlib
import math

import numpy as np
import pytest

from eqegs_repo import BadInput, Repository
from eqegs_repo.cli.main import main
from eqegs_repo.cooking import calibration
from eqegs_repo.io.poni_file import Poni, beam_centre, format_poni, parse_poni, read_poni, write_poni
from eqegs_repo.params.poni_spice import import_poni, values_from_poni
from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs

P = 7.26e-5
PYFAI_TEXT = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
# Calibration done on Tue Dec  1 00:20:22 2026
poni_version: 2.1
Detector: Detector
Detector_config: {"pixel1": 7.26e-05, "pixel2": 7.26e-05, "orientation": 3, "max_shape": [728, 384]}
Distance: 0.1
Poni1: 0.02183082
Poni2: 0.013815780000000001
Rot1: 0.0
Rot2: 0.0
Rot3: 0
Wavelength: 8.6025e-11
"""


def poni_file(tmp_path, text=PYFAI_TEXT, name="cal.poni", **replace):
    for key, value in replace.items():
        lines = [line for line in text.splitlines() if not line.lower().startswith(key.lower() + ":")]
        text = "\n".join(lines + ([f"{key}: {value}"] if value is not None else [])) + "\n"
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A tiny sample and background with spice matching the simulation; cache under base."""
    base = tmp_path_factory.mktemp("poni")
    params = image_params(n_frames=256)
    write_runs(base, params, [7, 8])
    prop = repository(base)[PROPOSAL]
    seed_spice(prop, params)
    return base, params


def test_pyfai_text_gives_the_geometry_and_the_beam_centre(tmp_path):
    poni = read_poni(poni_file(tmp_path))
    assert (poni.distance_m, poni.pixel1_m, poni.max_shape, poni.version) == (0.1, P, (728, 384), 2.1)
    # Poni1 runs along rows (y), Poni2 along columns (x); pixel centres sit at (i + 0.5) pixels
    assert beam_centre(poni) == pytest.approx((190.3 - 0.5, 300.7 - 0.5))
    found = values_from_poni(poni)
    assert found.values["geometry"] == {"distance_mm": 100.0, "pixel_size_mm": 0.0726, "tilt_rot1": 0.0,
                                        "tilt_rot2": 0.0, "wavelength_nm": 0.086025,
                                        "energy_keV": pytest.approx(14.41258, abs=1e-5)}
    assert found.values["q_integration"] == {"centre_method": "manual", "centre_x": 189.8,
                                             "centre_y": 300.2}
    assert found.notes == []


def test_version_1_pixel_sizes_and_no_wavelength(tmp_path):
    text = "PixelSize1: 7.26e-05\nPixelSize2: 7.26e-05\nDistance: 0.2\nPoni1: 0.01\nPoni2: 0.02\n"
    found = values_from_poni(read_poni(poni_file(tmp_path, text)))
    assert found.values["geometry"]["distance_mm"] == 200.0 and "wavelength_nm" not in found.values["geometry"]
    assert "no Wavelength" in found.notes[0]


@pytest.mark.parametrize("replace, message", [
    ({"Distance": None}, r"cal.poni: missing Distance"),
    ({"Poni1": "abc"}, r"cal.poni: Poni1 must be a finite number, found 'abc'"),
    ({"Distance": "-0.1"}, r"cal.poni: Distance must be > 0"),
    ({"Detector_config": "{pixel1: 1"}, r"cal.poni: Detector_config is not a JSON object"),
    ({"Detector_config": '{"pixel1": 7.26e-05}'}, r"cal.poni: no pixel size along axis 2"),
    ({"Detector_config": '{"pixel1": 7e-05, "pixel2": 7e-05, "orientation": 1}'},
     r"cal.poni: Detector_config orientation 1 is not supported; expected 3"),
    ({"poni_version": "4"}, r"cal.poni: poni_version 4 is not supported"),
])
def test_bad_files_name_the_file_and_the_key(tmp_path, replace, message):
    with pytest.raises(BadInput, match=message):
        read_poni(poni_file(tmp_path, **replace))


@pytest.mark.parametrize("replace, message", [
    ({"Rot3": "0.1"}, r"cal.poni: Rot3 = 0.1 rad: a turn of the detector about the beam"),
    ({"Detector_config": '{"pixel1": 7e-05, "pixel2": 8e-05}'}, r"pixel1 = 7e-05 m and pixel2 = 8e-05 m differ"),
    ({"Rot1": "1.0"}, r"cal.poni: geometry.tilt_rot1 = 1.0 is not allowed"),
])
def test_what_the_geometry_type_cannot_hold_is_refused(tmp_path, replace, message):
    with pytest.raises(BadInput, match=message):
        values_from_poni(read_poni(poni_file(tmp_path, **replace)))


def test_unreadable_files(tmp_path):
    with pytest.raises(BadInput, match=r"PONI file .*nope.poni does not exist"):
        read_poni(tmp_path / "nope.poni")
    with pytest.raises(BadInput, match=r"is a folder"):
        read_poni(tmp_path)
    (tmp_path / "bin.poni").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BadInput, match=r"bin.poni: not a text file"):
        read_poni(tmp_path / "bin.poni")
    with pytest.raises(BadInput, match=r"empty.poni: not a PONI file"):
        read_poni(poni_file(tmp_path, "# only a comment\n", name="empty.poni"))


def test_write_is_atomic_and_never_overwrites_unless_asked(tmp_path):
    poni = read_poni(poni_file(tmp_path))
    target = tmp_path / "out.poni"
    write_poni(poni, target)
    assert parse_poni(target.read_text(), "out") == parse_poni(format_poni(poni), "out")
    with pytest.raises(BadInput, match="exists; pass overwrite=True"):
        write_poni(poni, target)
    write_poni(Poni(0.2, 0.01, 0.02, 0, 0, 0, None, P, P), target, overwrite=True)
    assert read_poni(target).distance_m == 0.2 and read_poni(target).wavelength_m is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.poni", "out.poni"]  # no temporary left


def test_import_writes_records_once_and_export_gives_the_same_file(tree, tmp_path):
    base, _ = tree
    prop = repository(base)[PROPOSAL]
    tilted = poni_file(tmp_path, Rot1="0.02", Rot2="-0.01", Distance="0.0995")
    dry = prop.spice.import_poni(tilted, "S002", dry_run=True)
    assert "would write" in repr(dry) and not prop.spice.history("geometry", "S002")
    report = prop.spice.import_poni(tilted, "S002", author="tester")
    assert set(report.written) == {"geometry", "q_integration"}
    assert any("cooking refuses tilted detectors" in note for note in report.notes)
    assert "tilts imported" in repr(report) and "written r1" in repr(report)
    again = prop.spice.import_poni(tilted, "S002")
    assert sorted(again.unchanged) == ["geometry", "q_integration"] and not again.written
    view = prop["S002"].spice
    assert view["geometry"]["tilt_rot1"] == 0.02 and view["geometry"]["distance_mm"] == 99.5
    assert prop["S001"].spice["geometry"]["tilt_rot1"] == 0.0  # before the anchor
    # the tilted record is kept as the file says, and cooking names it when it refuses
    with pytest.raises(BadInput, match=r"geometry.tilt_rot1 = 0.02 \(from proposal S002 r1 .*tilted"):
        prop["S002"].cook("q_integration")
    # export: the manual centre of the record, the same PONI numbers (to rounding)
    exported = prop["S002"].export_poni(tmp_path / "back.poni")
    original, back = read_poni(tilted), read_poni(tmp_path / "back.poni")
    for name in ("distance_m", "poni1_m", "poni2_m", "rot1", "rot2", "rot3", "wavelength_m", "pixel1_m"):
        assert getattr(back, name) == pytest.approx(getattr(original, name), rel=1e-10, abs=1e-15), name
    assert format_poni(back) == format_poni(exported)  # the Poni returned is the one written
    assert import_poni(prop.spice, tmp_path / "back.poni", "S002").unchanged == ["geometry", "q_integration"]
    assert "beam centre x = " in (tmp_path / "back.poni").read_text()


def test_export_uses_the_fitted_centre_of_a_cooked_q_integration(tree, tmp_path, monkeypatch):
    base, params = tree
    sample = repository(base)[PROPOSAL]["S001"]
    with pytest.raises(BadInput, match=r"no beam centre to write: q_integration.centre_method is 'centroid' "
                                       r"and no reconstruction is cooked"):
        sample.export_poni(tmp_path / "none.poni")
    assert not (tmp_path / "none.poni").exists()
    # only the reconstruction is fingerprinted and cooked: the calibration folder is never hashed
    monkeypatch.setattr(calibration, "folder_fingerprint", lambda params: pytest.fail("calibration hashed"))
    poni = sample.export_poni(tmp_path / "cooked.poni", cook=True)
    monkeypatch.undo()
    assert sample.cache_status() == {"reconstruction": "fresh", "q_integration": "", "e_spectrum_and_isf": ""}
    qds = sample.cook("q_integration")
    assert beam_centre(read_poni(tmp_path / "cooked.poni")) == pytest.approx(
        (qds.attrs["centre_x"], qds.attrs["centre_y"]), abs=1e-9)
    assert "in the cooked reconstruction" in (tmp_path / "cooked.poni").read_text()
    assert poni.distance_m == pytest.approx(params.distance_mm * 1e-3)
    assert read_poni(tmp_path / "cooked.poni").max_shape == tuple(sample.spice["sensor_layout"]["canvas_shape"])
    # now cached: found without cook=True; an explicit centre or dataset wins
    sample.export_poni(tmp_path / "cooked.poni", overwrite=True)
    sample.export_poni(tmp_path / "given.poni", centre=(10.0, 20.0))
    assert beam_centre(read_poni(tmp_path / "given.poni")) == pytest.approx((10.0, 20.0))
    with pytest.raises(BadInput, match=r"centre= must be \(x, y\)"):
        sample.export_poni(tmp_path / "bad.poni", centre="middle")


def test_pyfai_reads_our_files_and_we_read_pyfai_files(tmp_path):
    pyFAI = pytest.importorskip("pyFAI")
    pytest.importorskip("pyFAI.integrator.azimuthal")
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ours = Poni(0.1, 0.0219, 0.0138, 0.02, -0.03, 0.0, 8.6025e-11, P, P, max_shape=(728, 384))
    write_poni(ours, tmp_path / "ours.poni")
    ai = pyFAI.load(str(tmp_path / "ours.poni"))
    assert (ai.dist, ai.poni1, ai.poni2, ai.rot1, ai.rot2, ai.rot3, ai.wavelength) == (
        0.1, 0.0219, 0.0138, 0.02, -0.03, 0.0, 8.6025e-11)
    assert (ai.detector.pixel1, ai.detector.pixel2) == (P, P)
    # pyFAI puts 2theta = 0 (the direct beam) where our beam centre is (pixel-index coordinates)
    x, y = beam_centre(ours)
    assert ai.tth(np.array([y]), np.array([x]))[0] == pytest.approx(0.0, abs=1e-12)
    assert ai.getFit2D()["centerX"] - 0.5 == pytest.approx(x) and ai.getFit2D()["centerY"] - 0.5 == pytest.approx(y)
    # and a file pyFAI writes reads back with the same numbers
    theirs = AzimuthalIntegrator(dist=0.2, poni1=0.01, poni2=0.015, rot1=0.01, rot2=0.0, rot3=0.0,
                                 detector=Detector(pixel1=P, pixel2=P, max_shape=(728, 384)),
                                 wavelength=8.6e-11)
    theirs.write(str(tmp_path / "theirs.poni"))
    back = read_poni(tmp_path / "theirs.poni")
    assert (back.distance_m, back.poni1_m, back.poni2_m, back.rot1, back.wavelength_m) == (
        0.2, 0.01, 0.015, 0.01, 8.6e-11)


def test_cli_import_and_export(tree, tmp_path, capsys):
    base, params = tree
    url = f"{base}/{{proposal}}/{{sample}}"
    memory = ["--spice-url", f"memory://spice-{hashlib.sha256(str(base).encode()).hexdigest()[:12]}"]  # cooktrees' store
    path = poni_file(tmp_path, Distance="0.101")
    assert main(["spice", "import-poni", url, PROPOSAL, *memory, "--anchor", "S001", str(path)]) == 1
    assert "expected a spice folder that lasts" in capsys.readouterr().err   # records would end with the command
    spice = ["--spice-url", str(tmp_path / "spice")]
    seed_spice(Repository(url, spice_url=str(tmp_path / "spice"), cache_url=False)[PROPOSAL], params)
    assert main(["spice", "import-poni", url, PROPOSAL, *spice, "--anchor", "S001", str(path)]) == 0
    out = capsys.readouterr().out
    assert "distance_mm" in out and "101.0" in out and "written r" in out
    assert main(["spice", "export-poni", url, PROPOSAL, "S001", *spice, str(tmp_path / "s1.poni")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_poni(tmp_path / "s1.poni").distance_m == pytest.approx(0.101)
    assert main(["spice", "export-poni", url, PROPOSAL, "S001", *spice, str(tmp_path / "s1.poni")]) == 1
    assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert main(["spice", "import-poni", url, PROPOSAL, *spice, str(tmp_path / "missing.poni")]) == 1
    assert "missing.poni does not exist" in capsys.readouterr().err
    lasting = Repository(url, spice_url=str(tmp_path / "spice"), cache_url=False)
    assert math.isclose(lasting[PROPOSAL]["S001"].spice["geometry"]["distance_mm"], 101.0)
    assert repository(base)[PROPOSAL]["S001"].spice["geometry"]["distance_mm"] != 101.0   # nothing in memory
