"""The decode-kernel section: the batch-32 slice, paged overhead, fp8 and prefill tables
(report/kernel_sections.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

from synthetic_runs import (
    row_cells,
    section_of,
    table_row,
)


def test_kernel_table_uses_batch_32_slice(full_report):
    _, md = full_report
    section = section_of(md, "Decode attention kernels")
    assert "batch = 32, block_size = 16, order = shuffled" in section
    assert "(fa3_contiguous)" in section and "3,000 GB/s" in section
    visible = section.split("<details>")[0]
    assert visible.count("| fa3 | paged |") == 4  # one row per context, batch 32 only
    assert visible.count("| fa3_contiguous | contiguous |") == 4
    assert "All 32 kernel configurations" in section
    assert "![decode latency vs context](decode_attention.png)" in section


def test_kernel_table_paged_overhead_from_param(full_report):
    _, md = full_report
    section = section_of(md, "Decode attention kernels").split("<details>")[0]
    assert row_cells(table_row(section, "triton", "paged", "2,048"))[-1] == "+25.0%"
    assert row_cells(table_row(section, "flashinfer", "paged", "2,048"))[-1] == "-2.0%"  # paged faster: negative
    assert row_cells(table_row(section, "fa3", "paged", "2,048"))[-1] == "+0.0%"
    assert row_cells(table_row(section, "fa3_contiguous", "contiguous", "2,048"))[-1] == "–"


def test_kernel_fp8_table(full_report):
    _, md = full_report
    section = section_of(md, "Decode attention kernels")
    fp8 = section.split("### fp8 KV cache")[1]
    cells = row_cells(table_row(fp8, "flashinfer", "32", "8,192"))
    assert cells[0] == "flashinfer" and cells[6] == "1.60×" and cells[7:] == ["0.0040", "0.0310"]
    assert row_cells(table_row(fp8, "triton", "32", "8,192"))[6] == "1.25×"
    assert "| flashinfer | paged |" in section.split("### fp8 KV cache")[0]  # the bf16 table is unchanged


def test_prefill_table(full_report):
    _, md = full_report
    section = section_of(md, "Paged prefill (chunked)")
    assert row_cells(table_row(section, "8", "8,192")) == ["8", "8,192", "16", "512", "930.0", "500.0"]
