"""The blind review page in a real headless browser (Debian's chromium through chromedriver):
load the offline sheet.html that `stylerl review make` wrote, answer items with the keyboard
shortcuts and the buttons, reload (progress is kept in the browser), export the verdicts, and
`stylerl review score` reads the export."""
import json
import shutil

import pytest
from conftest import write_jsonl

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402


def browser():
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromium-driver missing: scripts/test.sh installs them"
    o = webdriver.ChromeOptions()
    o.binary_location = chromium
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=o)


def test_page_answers_export_and_score(stylerl, tmp_path):
    rows = []
    for sys in ["rl", "sft"]:
        for i in range(5):
            rows.append({"system": sys, "index": i, "input": f"input {i} </script>",
                         "output": f"{sys.upper()} text {i}"})
    outputs = write_jsonl(tmp_path / "outputs.jsonl", rows)
    out = tmp_path / "sheet"
    stylerl("review", "make", "--outputs", outputs, "--systems", "rl,sft", "--out", out)
    sheet = json.loads((out / "sheet.json").read_text())
    b = browser()
    try:
        b.get((out / "sheet.html").as_uri())
        assert "item 1 of 5" in b.find_element(By.ID, "progress").text
        body = b.find_element(By.TAG_NAME, "body")
        # Item 1 by keyboard: style A, meaning B, fluency tie, A defective; then next.
        body.send_keys("1", "w", "d", "z", "n")
        # Item 2 by buttons.
        for bid in ["style-B", "meaning-A", "fluency-A"]:
            b.find_element(By.ID, bid).click()
        b.find_element(By.ID, "next").click()
        # Item 3 left unanswered on purpose; reload: the answers are still there.
        b.refresh()
        assert "2 answered" in b.find_element(By.ID, "progress").text
        b.find_element(By.ID, "export").click()
        text = b.find_element(By.ID, "out").get_attribute("value")
    finally:
        b.quit()
    lines = [json.loads(x) for x in text.splitlines()]
    assert [x["id"] for x in lines] == [sheet["items"][0]["id"], sheet["items"][1]["id"]]
    assert (lines[0]["style"], lines[0]["meaning"], lines[0]["fluency"], lines[0]["a_defective"]) == ("A", "B", "tie", True)
    assert (lines[1]["style"], lines[1]["meaning"], lines[1]["fluency"]) == ("B", "A", "A")
    v = tmp_path / "verdicts.jsonl"
    v.write_text(text)
    p = stylerl("review", "score", "--key", tmp_path / "sheet.key.json", "--verdicts", v)
    assert "2 of 5 items judged" in p.stdout
    # The page's items are the sheet's, unescaped (the "</script>" input did not break it).
    assert sheet["items"][0]["input"].endswith("</script>")
