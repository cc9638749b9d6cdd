"""Every setting of the paper run names its source: a section of the paper, or NOT IN PAPER / LOST."""

import textwrap

from conftest import REPO

from definemed.provenance import has_source, unsourced_config_settings, unsourced_schema_defaults


def test_every_config_setting_names_its_section_or_says_not_in_paper():
    missing = unsourced_config_settings(REPO / "config.yaml")
    assert not missing, "config.yaml settings with no section and no NOT IN PAPER / LOST:\n" + "\n".join(missing)


def test_every_schema_default_names_its_section_or_says_not_in_paper():
    missing = unsourced_schema_defaults(REPO / "schemas" / "config.schema.yaml")
    assert not missing, "schema defaults with no section and no NOT IN PAPER:\n" + "\n".join(missing)


def test_a_section_heading_does_not_vouch_for_the_keys_under_it(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            # 4.2, A.3: continual pre-training
            cpt:
              epochs: 2                 # 4.2
              pack_window_documents: 1000
              # NOT IN PAPER: a checkpoint every 2 h
              save_steps: 100
              runs:                     # 4.1, A.5
                a: {base: m, corpus: finemed}
              resources: {gpu: 8}
            """
        )
    )
    assert unsourced_config_settings(config) == [
        "cpt.pack_window_documents (line 4)",
        "cpt.resources (line 9)",
    ]


def test_a_schema_default_needs_its_own_source_unless_its_object_is_not_the_papers(tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        textwrap.dedent(
            """\
            $defs:
              resources: {type: object, description: "NOT IN PAPER: the site's"}
            properties:
              cpt:
                type: object
                description: "4.2: continual pre-training"
                properties:
                  epochs: {type: number, default: 2, description: "4.2: two epochs"}
                  adam_beta2: {type: number, default: 0.999}
                  resources: {$ref: "#/$defs/resources", default: {}}
              tiny:
                type: object
                description: "NOT IN PAPER: the miniature's"
                properties:
                  layers: {type: integer, default: 2}
            """
        )
    )
    assert unsourced_schema_defaults(schema) == ["/properties/cpt/properties/adam_beta2"]


def test_what_counts_as_a_source():
    for text in ("4.2", "A.1.1: three annotators", "Table 8 (Karolina)", "LOST: 0.1", "NOT IN PAPER: why"):
        assert has_source(text), text
    for text in (None, "", "Qwen2.5 tokenizer", "0.9 of GPU memory", "100 per class", "A100 dense bf16"):
        assert not has_source(text), text
