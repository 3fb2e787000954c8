"""Keyword rules for intent and complaint reason.

Two uses, never mixed up: (1) the *baseline* that the learned heads are compared with on the
hand-labelled gold sets, and (2) weak labels for the unlabelled brand traffic the intent and
reason heads are trained on. The gold sets were labelled by reading each post, not by these
rules, so evaluating on them never scores a model against the rules it learned from.
"""

from __future__ import annotations

import re

INTENTS = ("complaint", "question", "request", "praise", "purchase_intent", "spam", "other")
REASONS = (
    "outage_delay", "billing_price", "product_defect", "delivery", "staff_service",
    "account_access", "cancellation_refund", "lost_item", "other",
)  # fmt: skip


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(patterns) + r")(?!\w)", re.I)


SPAM = _words(
    r"giveaway", r"concours", r"gagne[rz]?", r"tirage au sort", r"code promo", r"promo code",
    r"follow back", r"followers", r"crypto", r"bitcoin", r"click here", r"cliquez ici",
)  # fmt: skip
PURCHASE = _words(
    r"want to (?:buy|order|get|upgrade|switch)", r"looking to buy", r"how much (?:is|are|does)",
    r"(?:je )?veux (?:m'abonner|souscrire|passer chez|prendre)", r"souscrire", r"m'abonner",
    r"passer chez", r"acheter", r"commander", r"sign(?:ing)? up", r"pre-?order", r"in stock",
)  # fmt: skip
COMPLAINT = _words(
    r"panne", r"coupure", r"coupée?s?", r"ne (?:marche|fonctionne)", r"marche pas",
    r"fonctionne pas", r"toujours pas", r"inadmissible", r"honte", r"scandale", r"nul(?:le)?",
    r"lamentable", r"inacceptable", r"ras le bol", r"marre", r"galère",
    r"aucune? (?:réponse|connexion)",
    r"plus de (?:connexion|réseau|internet|télé|tv)", r"bug(?:ue)?", r"lent(?:e|eur)?",
    r"not working", r"doesn'?t work", r"isn'?t working", r"won'?t", r"can'?t", r"cannot",
    r"still", r"worst", r"terrible", r"awful", r"horrible", r"ridiculous", r"broken",
    r"delayed", r"cancell?ed", r"never", r"waiting", r"outage", r"down", r"issues?", r"problems?",
    r"disappointed", r"unacceptable", r"frustrat\w*", r"useless", r"sucks", r"wtf",
)  # fmt: skip
REQUEST = _words(
    r"please", r"pls", r"plz", r"can you", r"could you", r"help", r"dm", r"svp", r"stp",
    r"merci de", r"pouvez[- ]vous", r"pourriez[- ]vous", r"aidez", r"besoin d'aide", r"rappeler",
)  # fmt: skip
QUESTION_START = _words(
    r"how", r"why", r"when", r"what", r"where", r"who", r"is there", r"does", r"do you",
    r"comment", r"pourquoi", r"quand", r"est-ce", r"quel(?:le)?s?", r"où", r"combien",
)  # fmt: skip
PRAISE = _words(
    r"thanks?", r"thank you", r"thx", r"love", r"great", r"awesome", r"amazing", r"best",
    r"merci", r"bravo", r"génial", r"super", r"top", r"parfait", r"excellent", r"félicitations",
)  # fmt: skip

REASON_RULES = (
    ("cancellation_refund", _words(
        r"résili\w*", r"rembours\w*", r"refund\w*",
        r"cancel(?:l?ing)? (?:my|the) (?:order|subscription|account)",
        r"money back", r"annul\w*",
    )),
    ("lost_item", _words(r"perdu\w*", r"lost", r"missing", r"bagages?", r"luggage", r"bags?")),
    ("delivery", _words(
        r"livr\w*", r"colis", r"chronopost", r"delivery", r"delivered", r"package", r"parcel",
        r"shipping", r"shipped", r"courier", r"tracking",
    )),
    ("billing_price", _words(
        r"factur\w*", r"prélèvement\w*", r"prix", r"tarifs?", r"augmentation", r"payé",
        r"bill\w*", r"charged?", r"price\w*", r"fees?", r"overcharged", r"payment",
        r"\d+ ?€", r"\$\d+",
    )),
    ("account_access", _words(
        r"compte", r"mot de passe", r"identifiants?", r"espace abonné", r"login", r"log in",
        r"password", r"account", r"locked", r"sign in", r"verif\w*", r"hacked",
    )),
    ("staff_service", _words(
        r"conseill\w*", r"service client", r"hotline", r"technicien", r"répond\w*", r"rude",
        r"agents?", r"staff", r"customer service", r"no response", r"on hold", r"attendant",
        r"manager", r"rdv", r"rendez-vous",
    )),
    ("outage_delay", _words(
        r"pannes?", r"coupure\w*", r"coupée?s?", r"débit", r"lent\w*", r"réseau", r"connexion",
        r"internet", r"wifi", r"fibre", r"down", r"outage", r"slow", r"delay\w*", r"late",
        r"no service", r"signal", r"cancell?ed flight", r"flight (?:was )?cancell?ed",
    )),
    ("product_defect", _words(
        r"bug\w*", r"crash\w*", r"plante", r"freeze\w*", r"broken", r"error", r"erreur",
        r"glitch\w*", r"update", r"défaut", r"cassée?", r"app", r"écran", r"screen", r"battery",
    )),
)  # fmt: skip


def intent(text: str) -> str:  # noqa: PLR0911 (one return per rule reads best)
    """The first rule that fires, in an order that lets a problem report win over its question."""
    stripped = text.strip()
    if SPAM.search(stripped):
        return "spam"
    if COMPLAINT.search(stripped):
        return "complaint"
    if PURCHASE.search(stripped):
        return "purchase_intent"
    if "?" in stripped or QUESTION_START.match(re.sub(r"^(?:@\w+\s*)+", "", stripped)):
        return "question"
    if REQUEST.search(stripped):
        return "request"
    if PRAISE.search(stripped):
        return "praise"
    return "other"


def reason(text: str) -> str:
    for name, pattern in REASON_RULES:
        if pattern.search(text):
            return name
    return "other"
