"""Jupyter views: repository, proposal (status per sample), sample, spice views and histories."""
import re

import pytest

import spice
from eqegs_repo import Repository
from spice.display import STATUS_STYLES, html_table
from tests.helpers.cooktrees import image_params, seed_spice, write_runs

P = "2025A1234"


def rows_of(html):
    """{first cell: the whole <tr ...>...</tr>} of every body row of the first table."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return {re.search(r"<td[^>]*>(.*?)</td>", tr).group(1): tr for tr in re.findall(r"<tr.*?</tr>", body)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """S001 cooked, S002 stale (cooked, then its q range changed), S003 not cooked, S004 broken
    (a sensor file truncated), S005 spice conflicted (two records share the top revision)."""
    base = tmp_path_factory.mktemp("repr")
    params = image_params(n_frames=256)
    write_runs(base, params, [1, 2, 3, 4, 5])
    repo = Repository(f"{base}/{{proposal}}/{{sample}}", spice_url="memory://repr-test", cache_url=f"{base}/.cache")
    prop = repo[P]
    seed_spice(prop, params, n_mc=20, bg_n_points=8, isf_error_threshold=0.2)
    prop["S001"].cooked
    prop["S002"].cooked
    prop.spice.seed("q_range", anchor="S002", q_min=11.5, q_max=13.0)
    prop.spice.seed("roi", anchor="S005", x0=1, y0=1, x1=40, y1=50)
    _conflicting_copy(prop.spice, prop.spice.update("roi", anchor="S005", x0=2), x0=3)
    sensor = base / P / "S004" / "train_integrated" / "sensor_1.npy"
    sensor.write_bytes(sensor.read_bytes()[:-100])
    return repo


def _conflicting_copy(collection, record, **data):
    """A second record with the same (type, anchor, revision) under another file name, as a
    sync tool's 'conflicted copy' would leave it."""
    twin = spice.Record(**{**record.to_dict(), "uuid": spice.records.new_uuid(), "data": {**record.data, **data}})
    collection.store.publish("conflicted-copy.yaml", spice.dump_record(twin).encode())
    collection.refresh()


def test_proposal_table_shows_each_samples_status_with_colour(tree):
    html = tree[P]._repr_html_()
    rows = rows_of(html)
    status = {key: re.findall(r"<td[^>]*>(.*?)</td>", tr)[1] for key, tr in rows.items()}  # after the key
    assert status == {"S000_noise": "background", "S001": "cooked", "S002": "stale",
                      "S003": "not cooked", "S004": "broken", "S005": "spice conflicted"}
    assert "#f8d0d0" in rows["S004"] and "#d8f0d8" in rows["S001"] and "#fde3c0" in rows["S005"]
    assert "#fff6c0" in rows["S002"] and "<tr>" in rows["S003"]
    assert "6 samples" in html and "1 cooked" in html and "1 not cooked" in html and "1 background" in html
    assert "truncated" in rows["S004"] or "expected" in rows["S004"]  # the problem is shown


def test_sample_view_has_info_results_and_spice(tree):
    html = tree[P]["S001"]._repr_html_()
    assert "cooked</span>" in html and "trains_integrated" in html and "sensor_0.npy (" in html
    results = rows_of(html.split("<p>Results</p>", 1)[1])
    assert set(results) == {"reconstruction", "q_integration", "e_spectrum_and_isf"}
    assert "fresh" in results["e_spectrum_and_isf"]
    assert "<details><summary>spice: complete</summary>" in html and "q_min" in html
    conflicted = tree[P]["S005"]._repr_html_()
    assert "spice conflicted" in conflicted and "CONFLICT" in conflicted
    assert STATUS_STYLES["conflict"] in conflicted  # the conflicted type's row is marked
    broken = tree[P]["S004"]._repr_html_()
    assert "broken" in broken and "sensor_1.npy" in broken


def test_repository_view_lists_proposals_and_spice(tree):
    html = tree._repr_html_()
    assert "1 proposals" in html and "repository spice records" in html
    assert P in rows_of(html)


def test_spice_history_marks_superseded_and_conflicting_records(tree):
    history = tree[P].spice.history("roi", anchor="S005")
    html = history._repr_html_()
    styles = re.findall(r"<tr(?: style='([^']*)')?><td", html)
    assert styles.count(STATUS_STYLES["conflict"]) == 2 and STATUS_STYLES["superseded"] in styles
    assert tree[P].spice.history("roi", anchor="S999")._repr_html_() == "<p>(no records)</p>"


def test_html_table_escapes_and_checks_row_styles():
    html = html_table(("a",), [("<b>",)], row_styles=["color: red"])
    assert "&lt;b&gt;" in html and "<tr style='color: red'>" in html
    with pytest.raises(ValueError, match="1 row styles for 2 rows"):
        html_table(("a",), [("x",), ("y",)], row_styles=["color: red"])
