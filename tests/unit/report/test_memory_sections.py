"""The memory tier's sections: waste in bytes, concurrent users, prefix sharing, fragmentation
(report/memory_sections.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

from synthetic_runs import (
    GB,
    LLAMA31_8B_BPT,
    LLAMA_7B_BPT,
    MAX_SEQ_LEN,
    N_REQUESTS,
    PEAK_BLOCKS,
    TOKENS_HELD,
    row_cells,
    section_of,
    table_row,
)


def test_memory_waste_table_in_bytes(full_report):
    _, md = full_report
    assert section_of(md, "Memory waste, 100 variable-length users")
    for label, bpt in (("LLaMA-7B fp16", LLAMA_7B_BPT), ("Llama-3.1-8B bf16", LLAMA31_8B_BPT)):
        used = TOKENS_HELD * bpt
        contiguous = N_REQUESTS * MAX_SEQ_LEN * bpt
        for bs, peak in PEAK_BLOCKS.items():
            paged = peak * bs * bpt
            row = row_cells(table_row(md, label, str(bs), f"paged, block {bs}"))
            assert row[3:] == [f"{paged / GB:,.2f}", f"{used / GB:,.2f}", f"{(paged - used) / GB:,.2f}",
                               f"{100 * (paged - used) / paged:.1f}%"]
            row = row_cells(table_row(md, label, str(bs), "contiguous (max_seq_len each)"))
            assert row[3:] == [f"{contiguous / GB:,.2f}", f"{used / GB:,.2f}", f"{(contiguous - used) / GB:,.2f}",
                               f"{100 * (contiguous - used) / contiguous:.1f}%"]
    # LLaMA-7B: 100 x 2048 tokens x 0.5 MiB = 107.37 GB reserved up front.
    assert "| 107.37 |" in table_row(md, "LLaMA-7B fp16", "16", "contiguous (max_seq_len each)")


def test_concurrent_users_table(full_report):
    _, md = full_report
    row = row_cells(table_row(md, "16", "16,384"))
    budget_gb = 16_384 * LLAMA_7B_BPT / GB  # 8.59 GB
    assert row[2] == f"{budget_gb:.2f}" == "8.59"
    assert row[6:] == ["8", "30", "29", "29", "0", f"{29 / 8:.1f}×"]


def test_prefix_sharing_table(full_report):
    _, md = full_report
    off = row_cells(table_row(md, "16", "100", "500 + 100", "off"))
    on = row_cells(table_row(md, "16", "100", "500 + 100", "on"))
    assert off[4] == "3,800" and on[4] == "1,031"
    assert off[6] == f"{3_800 * 16 * LLAMA_7B_BPT / GB:.2f}"
    assert on[6] == f"{1_031 * 16 * LLAMA_7B_BPT / GB:.2f}"
    assert on[7] == f"{100 * 3_069 / 3_800:.1f}%"
    assert on[8] == f"{100 * (1 - 1_031 / 3_800):.1f}%"
    assert off[8] == "–"


def test_fragmentation_table(full_report):
    _, md = full_report
    section = section_of(md, "Internal fragmentation by block size")
    for bs, peak in PEAK_BLOCKS.items():
        row = row_cells(table_row(section, str(bs), f"{TOKENS_HELD:,}"))
        assert row[4] == f"{peak * bs:,}"
        assert row[5] == f"{peak * bs - TOKENS_HELD:,}"
        assert row[6] == f"{(peak * bs - TOKENS_HELD) * LLAMA_7B_BPT / GB:.3f}"
        assert row[7] == f"{100 * (peak * bs - TOKENS_HELD) / (peak * bs):.2f}%"


def test_concurrent_users_blocks_table(full_report):
    _, md = full_report
    section = section_of(md, "Concurrent users under a KV budget")
    row = row_cells(table_row(section, "16", "29", "1,022"))
    assert row[3] == "1,022"
    assert row[4] == f"{1_022 * 16 * LLAMA_7B_BPT / GB:.2f}"          # paged GB
    assert row[5] == f"{29 * 2048 * LLAMA_7B_BPT / GB:.2f}"           # contiguous GB, same 29 users
    assert row[6] == f"{100 * (16_384 - 32) / (29 * 2048):.1f}%"
