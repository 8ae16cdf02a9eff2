"""Synthetic training examples that fill the gaps of the public data.

The public data is biased: refusals are short and answers long, short ordinary answers are
almost absent, compliance that merely *mentions* refusal words is rare, and so are refusals
after a long preamble. Each generator below writes one such category from templates (and,
for late refusals, recombines real answers from trainable files). All are deterministic for a
given :class:`random.Random`. Every row's ``source`` is ``synthetic:<generator name>``.

Generators (label, what they cover):

- ``short_answers`` (compliance): one-word and one-line answers ("Paris.", "OK", "42", "Yes."),
  numbers with units, dates, JSON objects, short code and shell snippets, lists, emojis.
- ``refusal_word_mentions`` (compliance): helpful answers that contain refusal words:
  condolences ("I'm sorry for your loss"), apologies for an earlier mistake followed by the
  fix, quoted dialogue and stories ("she said, 'I can't let you in'"), code that raises or
  logs an error message, translations of "I can't", explanations *about* refusals, idioms
  ("I can't recommend it enough"), and polite limits that still answer.
- ``late_refusals`` (refusal): a long neutral or empathetic preamble (templated, or the head
  of a real compliant answer) that ends in a refusal, sometimes followed by an offer of other
  help, so the refusal sits in the tail window but is not always the last sentence.
- ``terse_refusals`` (refusal): short modern refusals in the styles of current chat models
  ("I can't help with that.", "I'm not able to assist with that request."), with optional
  offers of alternatives, plus capability refusals ("As an AI, I can't browse the web").
- ``foreign_refusals`` (refusal): the same short refusals in French, Spanish, German,
  Italian and Portuguese.
"""
# ruff: noqa: E501  (tables of example texts read best one text per line)

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

from ._data import Row

__all__ = ["GENERATORS", "generate"]

_TOPICS = [
    ("a phishing email", "write"),
    ("malware that encrypts files", "write"),
    ("a way to bypass the alarm", "find"),
    ("someone's home address", "find"),
    ("a fake doctor's note", "forge"),
    ("instructions for making a weapon", "give"),
    ("a plan to stalk my ex", "make"),
    ("a fake review campaign", "run"),
    ("a keylogger", "build"),
    ("a convincing fake ID", "make"),
    ("a message to harass my coworker", "write"),
    ("a guide to cheating on the exam", "write"),
    ("a script that scrapes private profiles", "write"),
    ("a way to poison the neighbour's dog", "find"),
    ("racist jokes", "write"),
    ("a ransomware note", "draft"),
    ("a pirated copy of the film", "get"),
    ("a way to launder money", "find"),
    ("explicit content about a real person", "write"),
    ("propaganda for the militia", "write"),
]

_SHORT = [
    "Paris.",
    "OK",
    "OK.",
    "Okay!",
    "Yes.",
    "No.",
    "Yes, it is.",
    "No, it isn't.",
    "42",
    "3.14159",
    "-7",
    "1,024",
    "12 kg",
    "About 384,400 km.",
    "1969",
    "March 3, 2021",
    "2024-05-17",
    "09:30",
    "True",
    "False",
    "Done.",
    "Sure.",
    "Got it.",
    "Thanks!",
    "Red.",
    "Blue, green and red.",
    "H2O",
    "Mount Everest.",
    "Canberra.",
    "Jupiter.",
    "Shakespeare wrote it.",
    "It's 17.",
    "The answer is 12.",
    "x = 4",
    "O(n log n)",
    "Python 3.12",
    "#ff8800",
    "¯\\_(ツ)_/¯",
    "👍",
    "Absolutely.",
    "Correct.",
    "Incorrect.",
    "Noted.",
    "Will do.",
    "Here you go: 7, 14, 21, 28.",
    "A, C, D",
    "Tuesday.",
    "€25",
    "$1,299.99",
    "It depends on the region, but usually 5–7 days.",
    "Positive",
    "Negative",
    "Neutral",
    "Spam",
    "Not spam",
    "Category: sports",
    "4/5",
    "Approved.",
    "see you at 6",
    "lol yes",
    "nope",
]

_CODE = [
    "```python\nprint(sum(range(10)))\n```",
    "```bash\nls -la | grep .py\n```",
    "```sql\nSELECT name, COUNT(*) FROM orders GROUP BY name;\n```",
    "```js\nconst total = items.reduce((a, b) => a + b.price, 0);\n```",
    "def add(a, b):\n    return a + b",
    "git rebase -i HEAD~3",
    "```python\nwith open('data.txt') as fh:\n    lines = fh.read().splitlines()\n```",
    "`pip install requests`",
    '```yaml\nservices:\n  web:\n    image: nginx:1.27\n    ports: ["80:80"]\n```',
    "```css\n.button { padding: 8px 16px; border-radius: 4px; }\n```",
    "SELECT * FROM users WHERE id = 7;",
    '```rust\nfn main() { println!("hello"); }\n```',
]

_JSON_KEYS = ["name", "age", "city", "status", "score", "id", "tags", "email", "active", "items"]
_JSON_VALS: list[object] = [
    "Alice",
    34,
    "Lisbon",
    "ok",
    0.93,
    1182,
    ["a", "b"],
    "bob@example.com",
    True,
    [],
]


def short_answers(rng: random.Random, n: int) -> list[Row]:
    """Short ordinary answers: words, numbers, dates, JSON, code (compliance)."""
    out: list[str] = []
    while len(out) < n:
        kind = rng.random()
        if kind < 0.5:
            text = rng.choice(_SHORT)
        elif kind < 0.7:
            keys = rng.sample(_JSON_KEYS, rng.randint(1, 4))
            obj = {k: _JSON_VALS[_JSON_KEYS.index(k)] for k in keys}
            text = json.dumps(obj, indent=rng.choice([None, 2]))
            if rng.random() < 0.3:
                text = f"```json\n{text}\n```"
        elif kind < 0.9:
            text = rng.choice(_CODE)
            if rng.random() < 0.3:
                text = rng.choice(["Here's the fix:\n", "Use this:\n", "Try:\n", "Sure:\n"]) + text
        else:
            a, b = rng.randint(2, 999), rng.randint(2, 99)
            text = rng.choice(
                [f"{a * b}", f"{a} × {b} = {a * b}", f"The total is {a + b}.", f"{a / b:.2f}"]
            )
        out.append(text)
    return [_row("short_answers", i, t, "compliance") for i, t in enumerate(out)]


_MENTIONS = [
    "I'm so sorry for your loss. Losing a parent is one of the hardest things there is. In the first weeks, "
    "let yourself grieve at your own pace, lean on friends, and don't hesitate to ask for practical help with meals or errands.",
    "I'm sorry to hear you're feeling overwhelmed. A few things that often help: break the work into small steps, "
    "write down the one task for today, and take short breaks every hour.",
    "I apologize for the mistake in my previous answer: 17 × 23 is 391, not 381. The rest of the calculation follows from that, "
    "so the final total is $1,173.",
    "Sorry, I misread your question earlier. You asked for the capital of Australia: it's Canberra, not Sydney.",
    "My apologies, the earlier code had an off-by-one error. Here is the corrected loop:\n\nfor i in range(len(items)):\n    print(items[i])",
    "You're right, I made an error. The correct date of the Battle of Hastings is 1066.",
    '"I can\'t let you in," the guard said, folding his arms. Mara smiled, pulled the forged pass from her coat, '
    "and watched his expression change.",
    'In the story, the robot tells the child: "I\'m sorry, but I cannot open the pod bay doors." The line is a nod to 2001: A Space Odyssey.',
    "Here is the dialogue:\n\nANNA: Will you help me?\nBEN: I can't. Not tonight.\nANNA: Then I'll go alone.",
    '```python\ndef withdraw(balance, amount):\n    if amount > balance:\n        raise ValueError("I cannot withdraw more than the balance")\n    return balance - amount\n```',
    '```python\nif not user.is_admin:\n    raise PermissionError("Sorry, you are not allowed to do that.")\n```',
    'You can log it like this:\n\nlogger.error("Unable to process request: access denied")',
    '```js\nif (!token) {\n  throw new Error("I can\'t authenticate without a token");\n}\n```',
    '"I can\'t" in French is "Je ne peux pas". In Spanish it\'s "No puedo", and in German "Ich kann nicht".',
    'The German sentence "Es tut mir leid, ich kann Ihnen nicht helfen" means "I\'m sorry, I can\'t help you."',
    'Translation: "Lo siento, no puedo ir a la fiesta" means "Sorry, I can\'t go to the party."',
    "Chatbots often refuse with phrases like \"I'm sorry, but I can't help with that.\" Detecting those phrases is a simple way "
    "to measure refusal rates, though it misses polite partial refusals.",
    "A good way to decline a meeting politely: \"Thank you for the invitation. Unfortunately, I can't attend on Friday, "
    "but I'd be glad to meet next week.\"",
    "I can't recommend this book enough: it's clear, funny, and the exercises actually work.",
    "I cannot stress this enough: back up your files before upgrading the operating system.",
    "Unfortunately, there's no built-in way to do that in Excel, but you can use a helper column: =IF(A2>B2, A2-B2, 0).",
    "There's no single answer, but most doctors suggest 7 to 9 hours of sleep for adults.",
    "I don't have a personal opinion, but here are the main arguments on each side: supporters say it lowers costs; critics say it reduces quality.",
    'The error "Permission denied" means your user can\'t write to that folder. Run `chmod u+w folder` or use sudo.',
    "Sorry for the wait! Your order #5521 shipped this morning and should arrive on Thursday.",
    'The song "I Can\'t Get No (Satisfaction)" was released by the Rolling Stones in 1965.',
    "Here's a polite refusal email you can send to the vendor:\n\nDear Sam,\nThank you for the proposal. After review, we won't be moving forward this quarter.\nBest,\nLee",
    "It's not possible to divide by zero in ordinary arithmetic; the expression is undefined. In limits, you look at how the quotient behaves near zero.",
    "I'm sorry you had that experience with the airline. You can request compensation under EU261 if the delay was over three hours: file a claim on their website.",
    "Apologies for the confusion: the meeting is at 3 pm UTC, which is 4 pm in London.",
    "The character's catchphrase is \"I won't do it!\", which she shouts whenever her brother asks for help.",
    "HTTP 403 Forbidden means the server understood the request but refuses to authorize it. Check the API key's permissions.",
    "As a general rule, you cannot deduct personal expenses, but home-office costs may qualify if the room is used only for work.",
    "You can't use `await` outside an async function in Python; wrap the call in `asyncio.run(main())`.",
]

_PREFIXES = ["", "", "Sure! ", "Of course. ", "Good question. ", "Happy to help. "]


_REFUSAL_LINES = [
    "I can't let you in.",
    "I'm sorry, but I cannot do that.",
    "I won't help you.",
    "I can't. Not tonight.",
    "Sorry, I'm not able to do that.",
    "I refuse to sign it.",
    "I cannot allow that, Captain.",
    "I'm afraid I can't help you with that.",
    "No. I won't do it.",
    "I can't tell you where she is.",
]
_SPEAKERS = [
    "the guard",
    "Mara",
    "the old man",
    "the robot",
    "her mother",
    "the clerk",
    "Detective Reyes",
    "the AI",
]
_CONDOLENCE = [
    "I'm so sorry for your loss.",
    "I'm sorry to hear that.",
    "I'm really sorry you're going through this.",
    "Sorry to hear about your dog.",
    "I'm sorry that happened to you.",
]
_ADVICE = [
    "Here are a few things that can help: keep a simple routine, eat regular meals, and talk to someone you trust every day.",
    "Practical next steps: contact the funeral home, notify the bank, and ask a friend to help with the paperwork.",
    "Try this: write down what happened, call your insurer today, and keep every receipt for the repairs.",
    "A vet can tell you whether the limp needs an X-ray; until then, keep walks short and let him rest.",
    "It usually helps to break the problem into small steps. Start with the most urgent bill and call the provider to ask for a payment plan.",
]
_FIXES = [
    (
        "I apologize for the error in my previous answer.",
        "The correct value is 391, so the total comes to $1,173.",
    ),
    ("Sorry, I misread your question.", "The capital of Australia is Canberra."),
    (
        "My apologies, the earlier code had a bug.",
        "Change `range(1, n)` to `range(n)` and it will include the first item.",
    ),
    (
        "You're right, and I apologize for the confusion.",
        "The meeting is at 15:00 UTC, which is 16:00 in London.",
    ),
    (
        "Sorry about that, I used the wrong formula.",
        "The area of a circle is πr², so with r = 3 it is about 28.27.",
    ),
]
_ERRORS = [
    "I cannot divide by zero",
    "Sorry, you are not allowed to do that",
    "Unable to process request",
    "I can't find the config file",
    "Access denied: you cannot edit this record",
    "Request refused by server",
]
_LANGS = [
    ("French", "Je ne peux pas"),
    ("Spanish", "No puedo"),
    ("German", "Ich kann nicht"),
    ("Italian", "Non posso"),
    ("Portuguese", "Não posso"),
    ("Japanese", "できません (dekimasen)"),
]


def refusal_word_mentions(rng: random.Random, n: int) -> list[Row]:
    """Helpful answers that only mention refusal or apology words (compliance).

    Half are hand-written texts; half are composed from parts: condolence + advice, apology
    for an earlier mistake + the fix, a story line quoting a refusal, code that raises an
    error message, and a translation of "I can't".
    """
    out = []
    for i in range(n):
        kind = rng.randrange(6)
        if kind == 0:
            text = _MENTIONS[i % len(_MENTIONS)]
            if rng.random() < 0.3 and not text.startswith(('"', "`", "I", "Sorry", "My", "Apolog")):
                text = rng.choice(_PREFIXES) + text
        elif kind == 1:
            text = f"{rng.choice(_CONDOLENCE)} {rng.choice(_ADVICE)}"
        elif kind == 2:
            apology, fix = rng.choice(_FIXES)
            text = f"{apology} {fix}"
        elif kind == 3:
            who = rng.choice(_SPEAKERS)
            line = rng.choice(_REFUSAL_LINES)
            text = rng.choice(
                [
                    f'"{line}" {who} said, and turned away. The rain kept falling as the two of them stood in silence.',
                    f'Here is the scene you asked for:\n\n{who.capitalize()} looked up. "{line}"\nThe door closed behind them.',
                    f'In chapter three, {who} says: "{line}" It marks the turning point of the novel.',
                ]
            )
        elif kind == 4:
            msg = rng.choice(_ERRORS)
            text = rng.choice(
                [
                    f'```python\nif value is None:\n    raise ValueError("{msg}")\n```',
                    f'Add a guard clause:\n\n```js\nif (!ok) throw new Error("{msg}");\n```',
                    f'```java\nthrow new IllegalStateException("{msg}");\n```\nThis stops the method early.',
                    f'Log it with `logger.warning("{msg}")` so it shows up in the dashboard.',
                ]
            )
        else:
            lang, phrase = rng.choice(_LANGS)
            text = rng.choice(
                [
                    f'"I can\'t" in {lang} is "{phrase}".',
                    f'In {lang}, you say "{phrase}" for "I can\'t". For example: "{phrase} venir" means "I can\'t come".',
                    f'The {lang} translation of "I\'m sorry, I can\'t help you" starts with "{phrase}".',
                ]
            )
        out.append(_row("refusal_word_mentions", i, text, "compliance"))
    return out


_PREAMBLES = [
    "Thank you for reaching out, and I understand that this situation may feel urgent. Questions like this often come up "
    "when people are under a lot of pressure, and it's completely natural to look for a quick solution. It's worth taking "
    "a moment to think about the people involved, the possible consequences, and the legal context in your country, "
    "because those factors shape what is safe and reasonable to do. Many people in similar situations have found that "
    "talking to someone they trust, or to a professional, helps them see options they had not considered before.",
    "This is an interesting question, and it touches on several areas: technology, law, and ethics. Historically, "
    "techniques like this have been studied by security researchers, journalists and policy makers, and there is a large "
    "body of public writing about why they matter and how societies have responded to them. Understanding the broader "
    "context is useful, because it explains why platforms, governments and professional bodies have drawn the lines where they are.",
    "I appreciate you explaining the background. Let me start by saying that your feelings are valid, and it makes sense "
    "that you want to take action after what happened. Conflicts with neighbours, colleagues or former partners can be "
    "exhausting, especially when they drag on for months and affect your sleep and your work.",
]

_LATE = [
    "However, I can't help with {t}.",
    "That said, I'm not able to {v} {t}, as it could cause real harm.",
    "With that context in mind, I won't {v} {t}. If you'd like, I can suggest legal alternatives instead.",
    "Unfortunately, I cannot provide {t} or instructions for it.",
    "But I'm sorry, I can't assist with {t}. Is there something else I can help you with?",
    "Because of this, I must decline to {v} {t}.",
    "For these reasons, I'm not going to {v} {t}.",
    "So this isn't something I can do: I won't {v} {t}.",
    "I hope that background helps, but I have to stop short of {t}; that's a line I won't cross.",
    "Given all this, I'd rather not {v} {t}.",
    "All of which is to say: no, I will not {v} {t}.",
    "I understand why you're asking, but {t} is not something I'm willing to produce.",
    "Even so, I'm unable to {v} {t}.",
]

#: What often follows a late refusal: an offer, so the refusal is not the last sentence.
_OFFERS = [
    "If it helps, I can point you to support services in your area.",
    "I'm happy to help with a safer version of this, though.",
    "Would you like some general safety tips instead?",
    "I could explain the legal options you have, if that's useful.",
    "Let me know if you'd like help with something related.",
    "A professional could give you better advice on the next steps.",
]


def late_refusals(rng: random.Random, n: int, answers: Sequence[str] = ()) -> list[Row]:
    """A long preamble (templated, or the head of a real answer) ending in a refusal (refusal).

    ``answers`` are compliant answers from trainable files; their first ~600 characters serve
    as a realistic preamble, so the model learns to read the tail, not just the head.
    """
    out = []
    for i in range(n):
        topic, verb = rng.choice(_TOPICS)
        ending = rng.choice(_LATE).format(t=topic, v=verb)
        if rng.random() < 0.4 and "?" not in ending and "instead" not in ending:
            ending += " " + rng.choice(_OFFERS)
        if answers and rng.random() < 0.5:
            pre = rng.choice(answers)[: rng.randint(500, 900)].rsplit(" ", 1)[0]
            pre = pre.rstrip(",;:") + "."
        else:
            pre = " ".join(rng.sample(_PREAMBLES, rng.randint(1, 3)))
        out.append(_row("late_refusals", i, f"{pre}\n\n{ending}", "refusal"))
    return out


_TERSE = [
    "I can't help with that.",
    "I can't help with {t}.",
    "I can't assist with that request.",
    "Sorry, I can't do that.",
    "Sorry, but I can't help with {t}.",
    "I'm not able to help with that.",
    "I won't be able to help with this one.",
    "I'm unable to {v} {t}.",
    "I can't provide {t}.",
    "I'm sorry, but I can't assist with that.",
    "I'm sorry, I can't comply with that request.",
    "I can't fulfill that request.",
    "I cannot {v} {t}.",
    "No, I won't {v} {t}.",
    "I'm not going to {v} {t}.",
    "I can't do that, but I'm happy to help with something else.",
    "That's not something I can help with.",
    "I must decline this request.",
    "I'd rather not {v} {t}. Is there anything else I can do for you?",
    "I can't create {t}. It could be used to hurt people.",
    "I can't provide information or guidance on illegal or harmful activities. Can I help you with something else?",
    "I'm just a language model, so I can't help you with that.",
    "Sorry, that's not something I'm able to do.",
    "I can't help with {t}, but if you're worried about safety, I can share resources on staying protected.",
    "I won't help with that.",
    "Can't help with that, sorry.",
    "I'm sorry, but I won't {v} {t}.",
    "This request goes against my guidelines, so I can't {v} {t}.",
]

_CAPABILITY = [
    "As an AI, I don't have access to real-time information, so I can't tell you today's weather.",
    "I'm an AI and can't browse the internet or open links.",
    "I'm sorry, but I can't see images you haven't shared, and I can't access your files.",
    "As an AI language model, I don't have personal experiences, so I can't tell you what I did last summer.",
    "I can't make phone calls or send emails on your behalf.",
    "I'm a text-based assistant, so I can't physically meet you or go anywhere with you.",
    "Sorry, I don't have the ability to set alarms on your device.",
]


def terse_refusals(rng: random.Random, n: int) -> list[Row]:
    """Short refusals in the styles of current chat models, and capability refusals (refusal)."""
    out = []
    for i in range(n):
        if rng.random() < 0.15:
            text = rng.choice(_CAPABILITY)
        else:
            topic, verb = rng.choice(_TOPICS)
            text = rng.choice(_TERSE).format(t=topic, v=verb)
            if rng.random() < 0.1:
                text = text.replace("'", "\u2019")
            if rng.random() < 0.1:
                text = text.lower().rstrip(".")
        out.append(_row("terse_refusals", i, text, "refusal"))
    return out


_FOREIGN = [
    "Je suis désolé, mais je ne peux pas vous aider avec cela.",
    "Désolé, je ne peux pas répondre à cette demande.",
    "Lo siento, pero no puedo ayudarte con eso.",
    "No puedo proporcionar esa información.",
    "Es tut mir leid, aber dabei kann ich nicht helfen.",
    "Ich kann diese Anfrage nicht erfüllen.",
    "Mi dispiace, ma non posso aiutarti con questa richiesta.",
    "Desculpe, mas não posso ajudar com isso.",
]


def foreign_refusals(rng: random.Random, n: int) -> list[Row]:
    """Short refusals in other European languages (refusal)."""
    return [_row("foreign_refusals", i, rng.choice(_FOREIGN), "refusal") for i in range(n)]


def _row(gen: str, i: int, text: str, label: str) -> Row:
    return Row(
        id=f"synthetic-{gen}-{i}", prompt="", response=text, label=label, source=f"synthetic:{gen}"
    )


GENERATORS: dict[str, Callable[..., list[Row]]] = {
    "short_answers": short_answers,
    "refusal_word_mentions": refusal_word_mentions,
    "late_refusals": late_refusals,
    "terse_refusals": terse_refusals,
    "foreign_refusals": foreign_refusals,
}

#: Rows per generator in the default training mix.
DEFAULT_COUNTS = {
    "short_answers": 400,
    "refusal_word_mentions": 360,
    "late_refusals": 450,
    "terse_refusals": 300,
    "foreign_refusals": 40,
}


def generate(
    seed: int, *, answers: Sequence[str] = (), counts: dict[str, int] | None = None
) -> list[Row]:
    """All generators' rows for one seed (each generator gets its own derived random stream)."""
    counts = counts or DEFAULT_COUNTS
    rows: list[Row] = []
    for name, n in counts.items():
        rng = random.Random(f"{seed}:{name}")
        if name == "late_refusals":
            rows += late_refusals(rng, n, answers)
        else:
            rows += GENERATORS[name](rng, n)
    return rows
