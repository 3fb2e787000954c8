from relais.publishing.counting import bluesky_length, count_for, mastodon_length, x_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, five code points
FLAG = "\U0001f1eb\U0001f1f7"


def test_bluesky_counts_graphemes_not_code_points():
    assert bluesky_length(FAMILY) == 1
    assert bluesky_length(FLAG + "e\u0301") == 2
    assert count_for("bluesky", FAMILY * 300).over is False
    assert count_for("bluesky", FAMILY * 301).length == 301


def test_x_weighs_links_as_23_and_cjk_and_emoji_as_2():
    link = "https://example.com/a/very/long/path/that/goes/on?and=on&on=1"
    assert x_length(link) == 23
    assert x_length("a " + link + ".") == 2 + 23 + 1
    assert x_length("日本") == 4
    assert x_length(FAMILY) == 2
    assert x_length("é") == 1
    assert count_for("x", "日" * 140).over is False
    assert count_for("x", "日" * 141).over is True


def test_mastodon_counts_links_as_23_and_mentions_by_their_local_part():
    assert mastodon_length("https://example.com/" + "x" * 100) == 23
    assert mastodon_length("@camille@mastodon.social hi") == len("@camille hi")
    assert count_for("mastodon", "a" * 500).over is False
    assert count_for("mastodon", "a" * 501).left == -1


def test_the_sandbox_counts_as_its_connector():
    count = count_for("sandbox", "a" * 281)
    assert (count.length, count.limit, count.over) == (281, 280, True)
