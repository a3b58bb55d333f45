"""The rule classifier (the reviewable half of the hybrid): hard negatives, evidence, taxonomy
validation, keyword filters, the `classify` JSON Lines contract, evaluation, and regression gates of
the rules alone on the development and check sets (relabelled by the labelling guide).

The production classifier (rules + learned model) is tested in ``test_classifier_model.py``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.classify import (
    Classifier,
    KeywordFilter,
    TopicsConfigError,
    classify_many,
    load_classifier,
    parse_taxonomy,
)
from bot.classify.addresses import address_kind, hub_model_repository, paper_id
from bot.classify.evaluate import (
    EvalReport,
    LabeledItem,
    LabeledSetError,
    evaluate,
    format_report,
    load_labeled,
    parse_labeled,
    score_results,
)
from bot.classify.features import title_tokens
from bot.classify.jsonl import classify_lines
from bot.classify.rules import RuleClassifier
from bot.domain import Classification

REPO = Path(__file__).resolve().parent.parent
TOPICS = REPO / "config" / "topics.toml"
DEVSET = REPO / "tests" / "data" / "classify_devset.jsonl"
CHECKSET = REPO / "tests" / "data" / "classify_checkset.jsonl"
SHIPPED_TOPICS = ("distillation", "ip", "natsec", "release")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier(TOPICS, "off")  # the rules alone


@pytest.fixture(scope="module")
def devset() -> list[LabeledItem]:
    return load_labeled(DEVSET)


def _story(devset: list[LabeledItem], title: str) -> LabeledItem:
    for item in devset:
        if item.title == title:
            return item
    raise AssertionError(f"not in the development set: {title!r}")


# ------------------------------------------------------------------------------------------- shipped taxonomy
def test_shipped_topics(classifier: Classifier) -> None:
    assert classifier.topics == SHIPPED_TOPICS


def test_scores_cover_every_topic_and_stay_in_range(classifier: Classifier) -> None:
    result = classifier.classify("", "")
    assert set(result.scores) == set(SHIPPED_TOPICS)
    assert result.topics == ()
    long = "OpenAI releases new model " * 200
    for score in classifier.classify(long, long).scores.values():
        assert 0.0 <= score < 1.0


# Real published stories from the development set whose wording sets a trap for one topic.
HARD_NEGATIVES = {
    "distillation": [
        "Scotland’s new distillery boom",
        "Distillation",  # essential oils
        "Fractional distillation of crude oil",
        "Whisky news round-up: Orkney, Glenfiddich, and more",
        "New Scotch Distilleries",
    ],
    "ip": [
        "175,000 IP cameras could be hacked, says report",
        "IP Leak",
        "Square IPO pop: Jack Dorsey’s shares soar 50pc on market debut calming tech bubble fears after low pricing",
        "Nintendo Loses Trademark Battle With a Costa Rican Grocery Store",
        "Report: DeepSeek’s chat histories and internal data were publicly exposed",
        "Books Written By Humans Are Getting Their Own Certification",
    ],
    "natsec": [
        "Trump executive order calls for a next-generation missile defense shield",
        "⚡ THN Weekly Recap: Top Cybersecurity Threats, Tools and Tips [20 January]",
        "US Removes Malware Allegedly Planted on Computers By Chinese-Backed Hackers",
        "Trump signs executive order to pause TikTok ban, provide immunity to tech firms",
        "Is China winning the AI race?",
        "ChatGPT Gov aims to modernise US government agencies",
    ],
    "release": [
        "Moment freed Palestinian prisoners reunite with family and friends",
        "How Long Is Sniper Elite: Resistance?",
        "Weight saving and aero optimization feature in the 2025 Porsche 911 GT3",
        "SoftBank in Talks To Invest Up To $25 Billion in OpenAI",
        "Meta Poaches AI Talent from OpenAI with $1B Packages for Superintelligence",
        "Ericsson launches Cognitive Labs to pioneer telecoms AI research",
        "Google open-sources the Pebble OS",
        "Anthropic Builds RAG Directly Into Claude Models With New Citations API",
        "DeepSeek Outstrips Meta and Mistral To Lead Open-Source AI Race",
        "Snap rockets 40% and keeps on flying: Stock opens at $24/share",  # IPO + "supermodel"
    ],
}


@pytest.mark.parametrize(
    ("topic", "title"), [(topic, title) for topic, titles in HARD_NEGATIVES.items() for title in titles]
)
def test_hard_negatives(classifier: Classifier, devset: list[LabeledItem], topic: str, title: str) -> None:
    story = _story(devset, title)
    assert topic not in story.topics  # the label agrees that this is a trap
    result = classifier.classify(story.title, story.summary)
    assert topic not in result.topics, (result.scores, result.evidence)


@pytest.mark.parametrize(
    ("title", "topic", "term"),
    [
        (
            "Anthropic Accuses DeepSeek, Moonshot, and MiniMax of Large-Scale Distillation Attacks on Claude",
            "distillation",
            "distillation attacks",
        ),
        ("Ex-Google engineer convicted of stealing AI trade secrets for China", "ip", "ai trade secrets"),
        (
            "Nvidia Snaps Back at Biden's 'Innovation-Killing' AI Chip Export Restrictions",
            "natsec",
            "chip export",
        ),
        ("Alibaba Releases Qwen3 with Native Hybrid Reasoning", "release", "qwen3"),
    ],
)
def test_positive_with_evidence(
    classifier: Classifier, devset: list[LabeledItem], title: str, topic: str, term: str
) -> None:
    story = _story(devset, title)
    result = classifier.classify(story.title, story.summary)
    assert topic in result.topics
    assert term in result.evidence[topic]
    assert topic in result.reason()
    assert term in result.reason(max_terms=10)


def test_title_weighs_more_than_summary(classifier: Classifier) -> None:
    text = "Chip export controls tighten on AI accelerators"
    in_title = classifier.classify(text, "")
    in_summary = classifier.classify("Weekly roundup", text)
    assert in_title.scores["natsec"] > in_summary.scores["natsec"] > 0


def test_ai_context_gate_separates_senses(classifier: Classifier) -> None:
    # The same ambiguous word counts only when the story is about AI.
    plain = classifier.classify("Distilled spirits sales rise", "Craft distillers report record demand.")
    ai = classifier.classify(
        "Lab accused of distilling a rival's model", "The AI startup allegedly trained on outputs."
    )
    assert "distillation" not in plain.topics and plain.evidence["distillation"] == ()
    assert "distillation" in ai.topics
    assert "distilling" in ai.evidence["distillation"]


def test_evidence_is_empty_for_zero_scores(classifier: Classifier) -> None:
    result = classifier.classify("Venice flooding has city on its knees")
    assert all(score == 0.0 for score in result.scores.values())
    assert result.evidence == {topic: () for topic in SHIPPED_TOPICS}
    assert result.reason() == ""


# ------------------------------------------------------------------------------------------------ thresholds
MINI = """
version = 1
[defaults]
threshold = 0.5
[contexts.ai]
terms = ["ai", "llm"]
[topics.release]
threshold = {threshold}
contexts = ["ai"]
[topics.release.signals.announce]
weight = 3.0
terms = ["launch*"]
"""


def test_threshold_comes_from_config() -> None:
    low = RuleClassifier(parse_taxonomy(MINI.format(threshold=0.3)))
    high = RuleClassifier(parse_taxonomy(MINI.format(threshold=0.99)))
    a = low.classify("AI lab launches model")
    b = high.classify("AI lab launches model")
    assert a.scores == b.scores
    assert a.topics == ("release",)
    assert b.topics == ()


def test_operator_can_add_a_topic_without_code(tmp_path: Path) -> None:
    text = TOPICS.read_text(encoding="utf-8") + (
        '\n[topics.robotics]\ndescription = "Humanoid robots"\ncontexts = ["ai"]\n'
        '[topics.robotics.signals.core]\nweight = 3.0\nterms = ["humanoid robot*", "robotics"]\n'
    )
    path = tmp_path / "topics.toml"
    path.write_text(text, encoding="utf-8")
    extended = load_classifier(path)
    assert extended.topics == (*SHIPPED_TOPICS, "robotics")
    result = extended.classify("Figure AI shows humanoid robots folding laundry")
    assert "robotics" in result.topics
    assert result.evidence["robotics"] == ("humanoid robots",)


def test_a_number_wildcard_matches_any_version_but_never_a_word() -> None:
    rules = RuleClassifier(parse_taxonomy(MINI.format(threshold=0.5).replace('["launch*"]', '["opus #"]')))
    for title in ("AI lab ships Opus 5", "AI: Opus 4.1 is out", "Opus 12 for AI agents"):
        assert rules.classify(title).topics == ("release",), title
        assert rules.classify(title).evidence["release"][0].startswith("opus "), title
    for title in ("AI lab ships Opus", "AI opus magnum", "AI: Opus five"):
        assert rules.classify(title).topics == (), title


def test_a_headline_of_a_versioned_name_alone_announces_it(classifier: Classifier) -> None:
    # `bare_title`: nothing but a model name and its version numbers ("4.5" splits into two numbers).
    for title in ("GLM-5.1", "Claude 3.5 Sonnet", "MiniMax M2.7", "Mistral Small 3"):
        assert "release" in classifier.classify(title).topics, title
    # A versioned name inside a sentence still needs an announcement, and a sonnet is a poem.
    for title in ("GLM-5.1 tops a coding benchmark", "Shakespeare's Sonnet 18, read aloud"):
        assert "release" not in classifier.classify(title).topics, title
    assert "release" in classifier.classify("Anthropic releases Opus 5").topics
    assert "release" in classifier.classify("Baidu open-sources ERNIE 4.5").topics


def test_a_bare_repository_id_reads_as_its_name(classifier: Classifier) -> None:
    # The owner published it, as an outlet does; the name is what the headline says.
    assert title_tokens("zai-org/GLM-4.5") == ["glm", "4", "5"]
    assert title_tokens("Vitalik says 50/50 odds") == ["vitalik", "says", "50", "50", "odds"]
    assert (
        classifier.classify("zai-org/GLM-4.5").topics == classifier.classify("GLM-4.5").topics == ("release",)
    )


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://huggingface.co/facebook/cwm", "facebook/cwm"),
        ("https://huggingface.co/Lightricks/LTX-2?library=diffusers", "Lightricks/LTX-2"),
        ("https://hf.co/zai-org/GLM-4.6", "zai-org/GLM-4.6"),
        (
            "https://huggingface.co/deepseek-ai/DeepSeek-V3.2/resolve/main/assets/paper.pdf",
            "deepseek-ai/DeepSeek-V3.2",
        ),
        ("https://huggingface.co/datasets/HuggingFaceFW/fineweb", None),  # a dataset
        ("https://huggingface.co/spaces/openai/whisper", None),  # a Space
        ("https://huggingface.co/papers/2512.15603", None),  # a paper page
        ("https://huggingface.co/blog/llama4-release", None),
        ("https://huggingface.co/meta-llama", None),  # an organisation, not a repository
        ("https://github.com/facebook/cwm", None),
        ("ftp://huggingface.co/facebook/cwm", None),
        ("https://[huggingface.co/facebook/cwm", None),  # not a URL: urlsplit refuses it
        ("https://HuggingFace.co/facebook/cwm", "facebook/cwm"),  # hosts are case-blind
        ("https://huggingface.co./facebook/cwm.git", "facebook/cwm"),
        ("https://huggingface.co/competitions/some-challenge", None),  # the site's own sections
        ("https://huggingface.co/inference/models?model=x", None),
        ("https://huggingface.co/subscribe/pro", None),
        ("", None),
        (None, None),
    ],
)
def test_a_hub_model_repository_is_read_from_its_address(url: str | None, repository: str | None) -> None:
    assert hub_model_repository(url) == repository


def test_a_hub_model_repository_is_a_release_whatever_its_headline_says(classifier: Classifier) -> None:
    # The guide counts "a model card or Hub repository of a new model" as a release; aggregators link
    # one under a headline that is nothing but its id, which no word list can know.
    url = "https://huggingface.co/facebook/cwm"
    assert classifier.classify("facebook/cwm").topics == ()
    hub = classifier.classify("facebook/cwm", "", url)
    assert hub.topics == ("release",)
    assert hub.evidence["release"][0] == "always: Hugging Face model repository facebook/cwm"
    assert (
        classifier.classify("facebook/cwm", "", "https://huggingface.co/datasets/facebook/cwm").topics == ()
    )
    # The batch path (ingest) takes the address as a third element; two-element stories still work.
    batch = classify_many(classifier, [("facebook/cwm", "", url), ("facebook/cwm", "")])
    assert [c.topics for c in batch] == [("release",), ()]


def test_always_addresses_is_the_operators_choice_and_never_still_wins() -> None:
    url = "https://huggingface.co/facebook/cwm"
    plain = RuleClassifier(parse_taxonomy(MINI.format(threshold=0.5)))
    assert plain.classify("facebook/cwm", "", url).topics == ()  # not named: the address says nothing
    named = MINI.format(threshold=0.5).replace(
        "[topics.release.signals.announce]",
        'always_addresses = ["hub_model"]\nnever = ["cwm"]\n[topics.release.signals.announce]',
    )
    rules = RuleClassifier(parse_taxonomy(named))
    assert rules.classify("facebook/cwm", "", url).topics == ()  # `never` wins over the address
    assert rules.classify("acme/widget-7b", "", "https://huggingface.co/acme/widget-7b").topics == (
        "release",
    )


@pytest.mark.parametrize(
    ("url", "paper"),
    [
        ("https://arxiv.org/abs/2509.14008", "2509.14008"),
        ("http://arxiv.org/abs/2509.14008v2", "2509.14008"),
        ("https://arxiv.org/pdf/2509.14008v1.pdf", "2509.14008"),
        ("https://arxiv.org/html/2509.14008v1", "2509.14008"),
        ("https://export.arxiv.org/abs/2509.14008", "2509.14008"),
        ("https://huggingface.co/papers/2512.15603", "2512.15603"),  # the Hub's page of a paper
        ("https://arxiv.org/abs/hep-th/9901001v1", "hep-th/9901001"),  # an old-style id
        ("https://arxiv.org/list/cs.AI/recent", None),  # a listing, not a paper
        ("https://arxiv.org/abs/", None),
        ("https://example.com/arxiv.org/abs/2509.14008", None),  # the host decides, not the path
        ("https://huggingface.co/facebook/cwm", None),
        ("https://www.theverge.com/news/paper-2509.14008", None),
        (None, None),
    ],
)
def test_a_paper_is_read_from_its_address(url: str | None, paper: str | None) -> None:
    assert paper_id(url) == paper
    if paper is not None:
        assert address_kind(url) == ("paper", f"paper arXiv:{paper}")


def test_a_paper_keeps_a_topic_only_with_a_word_its_address_requires() -> None:
    """The guide: a paper is a release only when it "introduces a named model and publishes it"."""
    url = "https://arxiv.org/abs/2509.14008"
    text = MINI.format(threshold=0.5).replace(
        "[topics.release.signals.announce]",
        '[topics.release.address_requires]\npaper = ["open source*", "weights"]\n[topics.release.signals.announce]',
    )
    rules = RuleClassifier(parse_taxonomy(text))
    title, silent, published = (
        "AI: Acme launches Widget model",
        "A new family.",
        "We open-source the weights.",
    )
    assert rules.classify(title, silent).topics == ("release",)  # no address: nothing required
    assert rules.classify(title, silent, "https://example.com/widget").topics == ("release",)  # not a paper
    unpublished = rules.classify(title, silent, url)
    assert unpublished.topics == ()
    assert unpublished.evidence["release"] == ("never: paper arXiv:2509.14008 without a required word",)
    assert rules.classify(title, published, url).topics == ("release",)
    assert rules.classify("AI: Acme launches Widget model with open weights", silent, url).topics == (
        "release",
    )
    # A taxonomy without the key: the paper's address changes nothing.
    assert RuleClassifier(parse_taxonomy(MINI.format(threshold=0.5))).classify(title, silent, url).topics == (
        "release",
    )


def test_the_shipped_taxonomy_takes_release_from_a_paper_that_does_not_say_it_is_out() -> None:
    hybrid = load_classifier(TOPICS)
    url = "https://arxiv.org/abs/2505.09388"
    report = "Qwen3 Technical Report"
    announced = "In this work, we present Qwen3, the latest version of the Qwen model family."
    published = announced + " All Qwen3 models are publicly accessible under Apache 2.0."
    assert "release" not in hybrid.classify(report, announced, url).topics
    batch = classify_many(
        hybrid, [(report, announced, url), (report, published + " Weights on Hugging Face.", url)]
    )
    assert "release" not in batch[0].topics
    assert batch[0].evidence["release"] == ("never: paper arXiv:2505.09388 without a required word",)
    assert "release" in batch[1].topics


def test_the_learned_natsec_score_needs_an_ai_or_chip_word(caplog: pytest.LogCaptureFixture) -> None:
    """The guide: "national-security news with no AI or AI-chip angle" is not natsec. A linear model
    over words learns "pentagon" and "china" as natsec words and cannot learn that they count only
    beside AI, so on a world-news feed it flagged every fighter-jet intercept. The taxonomy's
    `model_requires_context` keeps the model to stories with one of the topic's contexts, as it
    was trained."""
    from bot.classify.hybrid import HybridClassifier

    hybrid = load_classifier(TOPICS)
    assert isinstance(hybrid, HybridClassifier) and hybrid.model is not None
    assert next(t for t in hybrid.rules.taxonomy.topics if t.name == "natsec").model_requires_context
    war = (
        "US military says Chinese fighter jet came within 10 feet of B-52 bomber",
        "The Pentagon released video.",
    )
    ai = ("Pentagon turns to AI to track Chinese fighter jets", "The military is testing machine learning.")
    chips = ("US tightens export controls on Nvidia chips to China", "")
    treaty = ("UN talks fail to agree a ban on lethal autonomous weapons", "")
    result = classify_many(hybrid, [war, ai, chips, treaty])
    assert result[0].scores["natsec"] == 0.0 and "natsec" not in result[0].topics
    assert "natsec" in result[1].topics and "natsec" in result[2].topics  # an AI word, a chip word
    # Outside the model's stories the rules decide, so an ungated term still counts.
    assert "natsec" in result[3].topics and "lethal autonomous" in result[3].evidence["natsec"]
    # The model alone still scores the war story: the gate is the taxonomy's, not the weights'.
    text = TOPICS.read_text(encoding="utf-8").replace("model_requires_context = true\n", "")
    with caplog.at_level(logging.WARNING, logger="bot.classify.hybrid"):
        ungated = HybridClassifier(RuleClassifier(parse_taxonomy(text)), hybrid.model)
    assert ungated.classify(*war).scores["natsec"] > 0.1
    assert "model_requires_context is off in the taxonomy but the model was trained with it" in caplog.text
    trained = hybrid.model.meta["topics"]["natsec"]
    gate = trained["model_requires_context"]
    assert 0 < gate["positives_outside"] < trained["train_positives"]
    assert (
        0
        < gate["stories_in_context"]
        < hybrid.model.meta["train_items"] + hybrid.model.meta["validation_items"]
    )


def test_rival_state_labs_and_the_states_own_names_count_for_natsec() -> None:
    """The guide counts a distillation accusation against a rival-state lab as natsec, and Alibaba's
    Qwen lab is one; the US defence department is also the Department of War, AI security
    institutes are the state's; a lab leader's statement names no product but is AI news."""
    hybrid = load_classifier(TOPICS)
    accusation = "Anthropic accuses Alibaba of largest distillation attack to date"
    statement = "Statement from Dario Amodei on our discussions with the Department of War"
    institute = "UK AISI / CAISI Preliminary Assessment of Kimi K3's Cyber Capabilities"
    earnings = "Alibaba shares jump after strong quarterly earnings"
    assert "alibaba" in hybrid.rules.analyze(accusation).rules_only.evidence["natsec"]
    said = hybrid.rules.analyze(statement)
    assert "ai" in said.contexts and "department of war" in said.rules_only.evidence["natsec"]
    results = classify_many(hybrid, [(accusation, ""), (statement, ""), (institute, ""), (earnings, "")])
    assert {"distillation", "ip", "natsec"} <= set(results[0].topics)
    assert "natsec" in results[1].topics and "natsec" in results[2].topics
    # A rival-state lab's name supports natsec; alone it is business news.
    assert results[3].topics == () and results[3].scores["natsec"] < 0.1


def test_licensing_deals_and_likeness_disputes_are_ip_but_a_voice_scam_is_not() -> None:
    """The guide's ip includes training-data licensing deals and voice and likeness cloning
    disputes; a scam with a cloned voice is fraud, so "voice clone" alone is no ip word."""
    hybrid = load_classifier(TOPICS)
    deal = "Apple in Talks to Pay Publishers for News Content to Power Siri AI"
    likeness = "Hasbro's TV Contracts Ask Child Voice Actors to Sign Rights Away for AI Use"
    scam = "How to avoid phone scams that use AI-voice cloning"
    evidence = {title: hybrid.rules.analyze(title).rules_only.evidence["ip"] for title in (deal, likeness)}
    assert "pay publishers" in evidence[deal] and "rights away" in evidence[likeness]
    results = classify_many(hybrid, [(deal, ""), (likeness, ""), (scam, "")])
    assert "ip" in results[0].topics and "ip" in results[1].topics
    assert "ip" not in results[2].topics and hybrid.rules.analyze(scam).rules_only.scores["ip"] == 0.0


def test_weapons_and_military_drones_count_for_natsec_only_beside_ai() -> None:
    """The guide's natsec includes military and defence AI; "weapons" and "drones" were no natsec
    words, so Google dropping its pledge on AI weapons was missed. Gated by the AI context like the
    rest of the topic: a drone delivering pizza is not natsec."""
    hybrid = load_classifier(TOPICS)
    pledge = (
        "Google drops pledge on AI use for weapons",
        "The tech giant has updated the principles governing its development of artificial intelligence.",
    )
    drones = ("US company's AI lets Ukraine's cheap kamikaze drones track targets on their own", "")
    pizza = ("Drones deliver pizza in Dublin suburbs", "")
    assert "weapons" in hybrid.rules.analyze(*pledge).rules_only.evidence["natsec"]
    results = classify_many(hybrid, [pledge, drones, pizza])
    assert "natsec" in results[0].topics and "natsec" in results[1].topics
    assert "drones" in results[1].evidence["natsec"]
    assert results[2].scores["natsec"] == 0.0 and results[2].topics == ()


def test_the_shipped_hybrid_reads_the_address_too() -> None:
    hybrid = load_classifier(TOPICS)  # the learned model and the rules
    url = "https://huggingface.co/apple/starflow"
    assert "release" not in hybrid.classify("apple/starflow").topics
    assert "release" in hybrid.classify("apple/starflow", "", url).topics
    assert ["release" in c.topics for c in classify_many(hybrid, [("apple/starflow", "", url)])] == [True]


def test_a_size_word_matches_a_number_with_its_letters() -> None:
    size = MINI.format(threshold=0.5).replace('["launch*"]', '["#b", "a#b experts"]')
    rules = RuleClassifier(parse_taxonomy(size))
    for title, term in (("AI: a 7B llm", "7b"), ("AI: 480B llm", "480b"), ("AI: A3B experts", "a3b experts")):
        assert rules.classify(title).evidence["release"] == (term,), title
    for title in ("AI: 7 billion", "AI: B7 llm", "AI: 7bn llm", "AI: a3 experts", "AI: ab experts"):
        assert rules.classify(title).topics == (), title


def test_a_repository_of_a_new_checkpoint_is_a_release_but_a_dollar_amount_is_not(
    classifier: Classifier,
) -> None:
    """`checkpoint` is `bare_only`: parameter counts and checkpoint kinds count only in a headline
    that is nothing but a name (a Hugging Face repository), never in a sentence ("$5B")."""
    for title in ("HuggingFaceTB/SmolLM3-3B", "Qwen/Qwen3-Coder-480B-A35B-Instruct", "LiquidAI/LFM2-1.2B"):
        assert "release" in classifier.classify(title).topics, title
    for title in (
        "OpenAI raises $40B to build new models",
        "Nvidia invests $5B in Intel",
        "microsoft/vscode",
    ):
        assert "release" not in classifier.classify(title).topics, title
    summary = "The 4B student is distilled from a 31B teacher."
    assert "4b" not in classifier.classify("How Nvidia distils Llama", summary).evidence["release"]


def test_rule_analysis_reports_a_bare_headline() -> None:
    rules = RuleClassifier(parse_taxonomy(TOPICS.read_text(encoding="utf-8")))
    assert rules.analyze_tokens(title_tokens("Qwen/Qwen3-Coder-480B-A35B-Instruct"), []).bare == {"release"}
    assert rules.analyze_tokens(title_tokens("GLM-5.1 tops a coding benchmark"), []).bare == frozenset()


# ------------------------------------------------------------------------------------------------ validation
def _error(text: str) -> str:
    with pytest.raises(TopicsConfigError) as info:
        parse_taxonomy(text, "topics.toml")
    return str(info.value)


def test_unknown_key_names_line_key_and_suggestion() -> None:
    text = MINI.format(threshold=0.5).replace("weight = 3.0", "wieght = 3.0")
    message = _error(text)
    line = text.splitlines().index("wieght = 3.0") + 1
    assert message.startswith(f"topics.toml:{line}: topics.release.signals.announce.wieght: unknown key")
    assert "did you mean 'weight'" in message


def test_bad_value_names_line_and_key() -> None:
    text = MINI.format(threshold=1.5)
    message = _error(text)
    line = text.splitlines().index("threshold = 1.5") + 1
    assert message.startswith(f"topics.toml:{line}: topics.release.threshold:")
    assert "must be in (0, 1]" in message


@pytest.mark.parametrize(
    ("replace", "by", "key", "fragment"),
    [
        (
            'contexts = ["ai"]',
            'contexts = ["ais"]',
            "topics.release.contexts",
            "unknown context 'ais'; did you mean 'ai'",
        ),
        (
            'terms = ["launch*"]',
            'terms = ["la*unch"]',
            "topics.release.signals.announce.terms",
            "not a valid term",
        ),
        (
            'terms = ["launch*"]',
            'terms = ["# launch"]',
            "topics.release.signals.announce.terms",
            "'#' (any number) after the first word",
        ),
        (
            'terms = ["launch*"]',
            'terms = ["#"]',
            "topics.release.signals.announce.terms",
            "size words such as '#b'",
        ),
        (
            "[topics.release.signals.announce]",
            'bare_title = ["announce"]\nbare_only = ["announc"]\n[topics.release.signals.announce]',
            "topics.release.bare_only",
            "'announc' must also be in bare_title",
        ),
        (
            'terms = ["launch*"]',
            'terms = ["launch", "LAUNCH"]',
            "topics.release.signals.announce.terms",
            "twice",
        ),
        ('terms = ["launch*"]', "terms = []", "topics.release.signals.announce.terms", "must not be empty"),
        ("weight = 3.0", 'weight = "high"', "topics.release.signals.announce.weight", "expected a number"),
        ("[topics.release]", "[topics.Release]", "topics.Release", "lower-case"),
        ("[defaults]", "[defualts]", "defualts", "did you mean 'defaults'"),
        (
            "[topics.release.signals.announce]",
            'always_addresses = ["huggingface"]\n[topics.release.signals.announce]',
            "topics.release.always_addresses",
            "unknown kind of address 'huggingface'; accepted: 'hub_model' (a model repository on the Hugging Face Hub",
        ),
        (
            "[topics.release.signals.announce]",
            'always_addresses = ["hub_model", "hub_model"]\n[topics.release.signals.announce]',
            "topics.release.always_addresses",
            "listed twice",
        ),
        (
            "[topics.release.signals.announce]",
            '[topics.release.address_requires]\narxiv = ["weights"]\n[topics.release.signals.announce]',
            "topics.release.address_requires.arxiv",
            "unknown kind of address; accepted: 'hub_model' (",
        ),
        (
            "[topics.release.signals.announce]",
            "[topics.release.address_requires]\npaper = []\n[topics.release.signals.announce]",
            "topics.release.address_requires.paper",
            "must not be empty",
        ),
        (
            "[topics.release.signals.announce]",
            'address_requires = ["paper"]\n[topics.release.signals.announce]',
            "topics.release.address_requires",
            "expected a table",
        ),
        (
            'contexts = ["ai"]',
            "model_requires_context = true",
            "topics.release.model_requires_context",
            "needs the topic to name 'contexts'",
        ),
        (
            'contexts = ["ai"]',
            'contexts = ["ai"]\nmodel_requires_context = "yes"',
            "topics.release.model_requires_context",
            "expected true or false",
        ),
        (
            "[topics.release.signals.announce]",
            '[topics.release.always_together]\nlab = ["openai"]\n[topics.release.signals.announce]',
            "topics.release.always_together",
            "needs at least two named lists of terms",
        ),
        (
            "[topics.release.signals.announce]",
            '[topics.release.always_together]\nlab = ["openai"]\nverb = []\n[topics.release.signals.announce]',
            "topics.release.always_together.verb",
            "must not be empty",
        ),
        (
            "[topics.release.signals.announce]",
            'always_together = ["openai"]\n[topics.release.signals.announce]',
            "topics.release.always_together",
            "expected a table",
        ),
    ],
)
def test_validation_errors(replace: str, by: str, key: str, fragment: str) -> None:
    text = MINI.format(threshold=0.5).replace(replace, by)
    message = _error(text)
    assert f": {key}:" in message
    assert fragment in message
    assert message.startswith("topics.toml:")  # always a line number


def test_requires_must_name_existing_signal() -> None:
    text = MINI.format(threshold=0.5).replace(
        'contexts = ["ai"]', 'contexts = ["ai"]\nrequires = [["anounce"]]'
    )
    message = _error(text)
    assert "topics.release.requires" in message
    assert "unknown signal 'anounce'; did you mean 'announce'" in message


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    message = _error("[topics.release\n")
    assert message.startswith("topics.toml: invalid TOML:") and "line 1" in message
    with pytest.raises(TopicsConfigError, match="file not found"):
        load_classifier(tmp_path / "nope.toml")
    with pytest.raises(TopicsConfigError, match="define at least one topic"):
        parse_taxonomy("version = 1\n", "topics.toml")


# ------------------------------------------------------------------------------------------------- keywords
def test_keyword_filter_whole_words_and_phrases() -> None:
    f = KeywordFilter(include=['"export controls"', "H20"], exclude=["gaming"])
    assert f.matches("New export-controls rule", "")
    assert f.matches("Nvidia", "sales of the h20 chip")
    assert not f.matches("Export of controls", "")  # phrase words must be adjacent
    assert not f.matches("H200 demand", "")  # whole words only
    assert not f.matches("H20 gaming edition", "")  # exclude wins
    assert not f.matches("Unrelated", "")


_KEYWORD_ALPHABET = "aAeiIkKsSx_-/. +#İıſKıß5"


@settings(max_examples=400, deadline=None)
@given(
    keywords=st.lists(st.text(_KEYWORD_ALPHABET, min_size=1, max_size=8), min_size=1, max_size=3),
    before=st.text(_KEYWORD_ALPHABET, max_size=8),
    after=st.text(_KEYWORD_ALPHABET, max_size=8),
    pick=st.integers(min_value=0, max_value=2),
    spell=st.sampled_from(["same", "upper", "lower", "dashes", "underscores"]),
)
def test_required_words_never_drop_a_match(
    keywords: list[str], before: str, after: str, pick: int, spell: str
) -> None:
    """The router looks only at channels one of whose required words the story contains: that
    shortcut must hold for every text ``matches`` accepts, odd case folding and separators too."""
    f = KeywordFilter(include=keywords)
    if not f.include:
        return
    keyword = f.include[pick % len(f.include)]
    written = {
        "same": keyword,
        "upper": keyword.upper(),
        "lower": keyword.lower(),
        "dashes": keyword.replace(" ", "-"),
        "underscores": keyword.replace(" ", "_"),
    }[spell]
    text = f"{before}{written}{after}"
    required = f.required_words()
    if f.matches(text):
        assert required is None or required & KeywordFilter.words_of(text), (keywords, text, required)


def test_required_words_of_plain_keywords() -> None:
    assert KeywordFilter(include=['"export controls"', "H20", "gpt-5."]).required_words() == {
        "export",
        "h20",
        "gpt",
    }
    assert KeywordFilter(exclude=["crypto"]).required_words() is None  # any story can reach it
    assert KeywordFilter(include=["straße"]).required_words() is None  # not vouched for
    assert KeywordFilter.words_of("New EXPORT_controls on H20s", "and İt") >= {
        "export",
        "controls",
        "h20s",
        "it",
    }


def test_keyword_filter_defaults_and_parsing() -> None:
    assert KeywordFilter().matches("anything")
    assert not KeywordFilter()
    only_exclude = KeywordFilter(exclude=["crypto"])
    assert only_exclude.matches("AI chips") and not only_exclude.matches("Crypto AI chips")
    assert KeywordFilter.parse('nvidia "export controls" “model weights”') == [
        "nvidia",
        "export controls",
        "model weights",
    ]
    assert KeywordFilter(include=["C++"]).matches("Why C++ still matters")
    assert KeywordFilter(include=["ban"]).matched("Italy bans DeepSeek", "a ban on the app") == ["ban"]
    with pytest.raises(ValueError, match="unbalanced quotes"):
        KeywordFilter.parse('"open')


# ------------------------------------------------------------------------------------------ classify contract
def test_classify_lines_contract(classifier: Classifier) -> None:
    lines = [
        json.dumps(
            {"title": "Anthropic says Chinese labs distilled Claude", "summary": "Distillation attacks."}
        ),
        "",
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"summary": "no title"}),
        json.dumps({"title": "Whisky distillery opens", "summary": None, "extra": 1}),
        json.dumps({"title": 5}),
        json.dumps({"title": "facebook/cwm", "url": "https://huggingface.co/facebook/cwm"}),
        json.dumps({"title": "facebook/cwm", "url": 5}),
    ]
    out = [json.loads(line) for line in classify_lines(classifier, lines, explain=False)]
    assert len(out) == 8  # the blank line produced nothing
    first, bad_json, not_object, no_title, whisky, bad_title, hub, bad_url = out
    assert first["topics"][:2] == ["distillation", "ip"]  # an accusation is ip too (labelling guide)
    assert list(first["scores"]) == list(SHIPPED_TOPICS)
    assert all(round(v, 4) == v and 0 <= v <= 1 for v in first["scores"].values())
    assert set(first) == {"topics", "scores"}
    assert bad_json["error"].startswith("line 3: invalid JSON")
    assert not_object == {"error": "line 4: expected a JSON object"}
    assert no_title == {"error": "line 5: missing 'title'"}
    assert whisky["topics"] == []
    assert bad_title == {"error": "line 7: 'title' must be a string"}
    assert hub["topics"] == ["release"]  # the address of a Hub model repository
    assert bad_url == {"error": "line 9: 'url' must be a string"}


def test_classify_lines_explain(classifier: Classifier) -> None:
    line = json.dumps({"title": "Commerce adds Chinese AI firms to entity list over chip export controls"})
    (out,) = [json.loads(x) for x in classify_lines(classifier, [line], explain=True)]
    assert out["topics"] == ["natsec"]
    assert set(out["evidence"]) == set(SHIPPED_TOPICS)
    assert "entity list" in out["evidence"]["natsec"]
    assert all(isinstance(terms, list) for terms in out["evidence"].values())


# -------------------------------------------------------------------------------------------------- evaluate
class _Fixed:
    """A stand-in classifier that returns whatever it was told to, for testing the metrics."""

    def __init__(self, answers: dict[str, tuple[str, ...]], topics: tuple[str, ...] = ("a", "b")) -> None:
        self._answers = answers
        self._topics = topics

    @property
    def topics(self) -> tuple[str, ...]:
        return self._topics

    def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification:
        got = self._answers.get(title, ())
        return Classification(
            scores={t: (0.9 if t in got else 0.1) for t in self.topics},
            topics=got,
            evidence={t: (("x",) if t in got else ()) for t in self.topics},
        )


def test_evaluate_metrics_and_report() -> None:
    items = parse_labeled(
        [
            '{"title": "one", "topics": ["a"]}',
            '{"title": "two", "topics": ["a", "b"]}',
            "",
            '{"title": "three", "summary": null, "topics": []}',
        ]
    )
    report = evaluate(_Fixed({"one": ("a",), "two": ("a",), "three": ("b",)}), items)
    a, b = report.per_topic["a"], report.per_topic["b"]
    assert (a.tp, a.fp, a.fn, a.precision, a.recall, a.f1) == (2, 0, 0, 1.0, 1.0, 1.0)
    assert (b.tp, b.fp, b.fn, b.precision, b.recall, b.f1) == (0, 1, 1, 0.0, 0.0, 0.0)
    assert report.macro_f1 == pytest.approx(0.5)
    assert report.exact_match == 1
    assert [m.item.line for m in report.misclassified] == [2, 4]
    text = format_report(report)
    assert "precision" in text and "macro-F1 0.500" in text
    assert "line 4: three" in text and "expected [-]  got [b]" in text


def test_macro_averages_skip_a_topic_with_no_items_and_no_predictions() -> None:
    # "c" has no items and is never predicted: it says nothing about the classifier, and counting
    # it as F1 1.000 would lift the macro-F1 of a file without such stories.
    items = parse_labeled(['{"title": "one", "topics": ["a"]}', '{"title": "two", "topics": []}'])
    fixed = _Fixed({"one": ("a",), "two": ()}, topics=("a", "b", "c"))
    report = evaluate(fixed, items)
    assert [m.topic for m in report.scored_topics] == ["a"]
    assert report.macro_f1 == pytest.approx(1.0)
    # "b" without items but with a false alarm stays in, at F1 0.
    report = evaluate(_Fixed({"one": ("a",), "two": ("b",)}, topics=("a", "b", "c")), items)
    assert [m.topic for m in report.scored_topics] == ["a", "b"]
    assert report.macro_f1 == pytest.approx(0.5)
    assert report.macro_precision == pytest.approx(0.5)
    text = format_report(report)
    assert "not counted: c" in text and "macro-F1 0.500" in text
    # A file of negatives that nothing flags is all right.
    negatives = parse_labeled(['{"title": "two", "topics": []}'])
    assert evaluate(_Fixed({"two": ()}, topics=("a", "b")), negatives).macro_f1 == pytest.approx(1.0)


def test_load_labeled_errors(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"title": "ok", "topics": []}\n\n{"title": "x", "topics": "ip"}\n', encoding="utf-8")
    with pytest.raises(LabeledSetError, match=r"set\.jsonl:3: 'topics' must be a list"):
        load_labeled(path)
    path.write_text('{"title": "ok", "topics": []}\n{oops\n', encoding="utf-8")
    with pytest.raises(LabeledSetError, match=r"set\.jsonl:2: invalid JSON"):
        load_labeled(path)
    path.write_text('{"title": "ok"}\n', encoding="utf-8")
    with pytest.raises(LabeledSetError, match=r"set\.jsonl:1: missing 'topics'"):
        load_labeled(path)
    with pytest.raises(LabeledSetError, match="cannot read"):
        load_labeled(tmp_path / "missing.jsonl")
    with pytest.raises(LabeledSetError, match="line 1: unknown topic"):
        evaluate(_Fixed({}), parse_labeled(['{"title": "t", "topics": ["zzz"]}']))
    with pytest.raises(LabeledSetError, match="line 1: unknown topic"):
        score_results(("a",), parse_labeled(['{"title": "t", "topics": ["zzz"]}']), [])
    with pytest.raises(ValueError, match="0 classifications for 1 items"):
        score_results(("a",), parse_labeled(['{"title": "t", "topics": ["a"]}']), [])


# ---------------------------------------------------------------------------------------------- quality gate
# The rules alone, on the development set they were tuned on, relabelled by the guide (which now
# counts distillation accusations as ip and natsec too): a regression gate for rule edits. The
# production figures are the learned model's on the frozen test split.
MIN_MACRO_F1 = 0.87
MIN_PRECISION = 0.85


def gate_failures(report: EvalReport) -> list[str]:
    failures = []
    if report.macro_f1 < MIN_MACRO_F1:
        failures.append(f"macro-F1 {report.macro_f1:.3f} < {MIN_MACRO_F1}")
    for m in report.per_topic.values():
        if m.precision < MIN_PRECISION:
            failures.append(f"{m.topic}: precision {m.precision:.3f} < {MIN_PRECISION}")
    return failures


def test_devset_is_real_sized_and_labeled(devset: list[LabeledItem]) -> None:
    assert len(devset) >= 250
    for topic in SHIPPED_TOPICS:
        assert sum(topic in item.topics for item in devset) >= 20, topic
    assert all(item.url and item.url.startswith("http") for item in devset)
    negatives = [item for item in devset if not item.topics]
    assert len(negatives) >= 80
    titles = [item.title.casefold() for item in devset]
    assert len(titles) == len(set(titles)), "duplicate headlines"


def test_devset_quality_gate(classifier: Classifier, devset: list[LabeledItem]) -> None:
    report = evaluate(classifier, devset)
    failures = gate_failures(report)
    assert not failures, "\n".join(failures) + "\n\n" + format_report(report)


# The check set: real headlines collected after the rules were tuned on the development set, to estimate
# generalization (see tests/data/README.md). Its bar is looser than the development set's, but a rule
# change that only helps the development set (memorisation) or breaks unseen-style wording fails here.
MIN_CHECK_MACRO_F1 = 0.90
MIN_CHECK_PRECISION = 0.85


def check_failures(report: EvalReport) -> list[str]:
    failures = []
    if report.macro_f1 < MIN_CHECK_MACRO_F1:
        failures.append(f"check set macro-F1 {report.macro_f1:.3f} < {MIN_CHECK_MACRO_F1}")
    for m in report.per_topic.values():
        if m.precision < MIN_CHECK_PRECISION:
            failures.append(f"check set {m.topic}: precision {m.precision:.3f} < {MIN_CHECK_PRECISION}")
    return failures


def _norm_title(title: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in title.casefold()).split())


def test_checkset_is_real_sized_and_disjoint_from_devset(devset: list[LabeledItem]) -> None:
    checkset = load_labeled(CHECKSET)
    assert len(checkset) >= 100
    for topic in SHIPPED_TOPICS:
        assert sum(topic in item.topics for item in checkset) >= 15, topic
    assert sum(not item.topics for item in checkset) >= 40
    assert all(item.url and item.url.startswith("http") for item in checkset)
    dev_urls = {item.url.rstrip("/") for item in devset}
    dev_titles = {_norm_title(item.title) for item in devset}
    check_titles = [_norm_title(item.title) for item in checkset]
    assert len(check_titles) == len(set(check_titles)), "duplicate headlines"
    overlap = [item.title for item in checkset if item.url.rstrip("/") in dev_urls]
    overlap += [item.title for item in checkset if _norm_title(item.title) in dev_titles]
    assert not overlap, f"check-set items also in the development set: {overlap}"


def test_checkset_quality_gate(classifier: Classifier) -> None:
    report = evaluate(classifier, load_labeled(CHECKSET))
    failures = check_failures(report)
    assert not failures, "\n".join(failures) + "\n\n" + format_report(report)


def test_quality_gate_can_fail(devset: list[LabeledItem]) -> None:
    # A classifier that tags every story with every topic must not pass the gate.
    everything = _Everything()
    assert gate_failures(evaluate(everything, devset))


class _Everything:
    @property
    def topics(self) -> tuple[str, ...]:
        return SHIPPED_TOPICS

    def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification:
        return Classification(
            scores=dict.fromkeys(SHIPPED_TOPICS, 1.0),
            topics=SHIPPED_TOPICS,
            evidence=dict.fromkeys(SHIPPED_TOPICS, ()),
        )


def test_a_truncated_line_is_reported_at_its_end_not_column_1(tmp_path: Path) -> None:
    classifier = load_classifier(TOPICS, "off")
    lines = ['{"title": \n', '{"title": "Nvidia chips", "summary": "x"\n', '{"title": "x"} trailing\n']
    errors = [json.loads(line)["error"] for line in classify_lines(classifier, lines, explain=False)]
    assert errors == [
        "line 1: invalid JSON: the line ends early, at column 11 (truncated?): Expecting value",
        "line 2: invalid JSON: the line ends early, at column 41 (truncated?): Expecting ',' delimiter",
        "line 3: invalid JSON: Extra data (column 16)",
    ]
    labelled = tmp_path / "set.jsonl"
    labelled.write_text('{"title": "a", "topics": []}\n{"title": "b", "topics": [\n')
    with pytest.raises(
        LabeledSetError, match=r"set\.jsonl:2: invalid JSON: the line ends early, at column 27"
    ):
        load_labeled(labelled)
