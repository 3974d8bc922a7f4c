"""Text for eSpeak NG: a few hand-written sentences per language plus random recombination.

Real sentences give natural prosody; word salad and pseudo-words give phoneme variety without
needing a downloaded corpus. Languages in HELDOUT_LANGS never appear in training.
"""

from __future__ import annotations

import random

SENTENCES: dict[str, list[str]] = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Please bring me a bowl of warm soup before the meeting.",
        "We were away for a while, but now we are back.",
        "My mother made a map of the whole valley by herself.",
        "Could you open the window? It is very hot in here.",
        "Big boats bob by the pier, pulling ropes and buoys.",
        "She sells sea shells on the sea shore every morning.",
        "I think that the weather will change this afternoon.",
        "Peter Piper picked a peck of pickled peppers.",
        "Yesterday we watched a movie about a famous painter.",
        "Thank you very much, that was really helpful.",
        "How much wood would a woodchuck chuck?",
        "The museum opens at nine and closes at five.",
        "Remember to buy milk, bread, butter and apples.",
        "Our new office is beside the old library on Main Street.",
        "Wow, you really should see the view from the bridge.",
        "Every Monday morning I ride my bike to the market.",
        "The baby boy smiled, and then he fell asleep.",
        "Is this the right way to the airport, or should we turn back?",
        "Good evening, ladies and gentlemen, welcome aboard.",
        "Five hundred people voted, and the motion passed easily.",
        "A warm breeze moved through the tall yellow grass.",
        "Please hold the line while I transfer your call.",
        "Who knew that a moose could run so fast?",
        "Let me know when you arrive, and I will pick you up.",
        "Bob and Pam both bought blue umbrellas at the mall.",
        "The chef chopped fresh herbs for the fish soup.",
        "Why would anyone wait outside in the freezing rain?",
        "Hello everyone, my name is Emma and I build robots.",
        "The result was better than we expected.",
    ],
    "es": [
        "Buenos días, ¿cómo estás hoy?",
        "Mi madre prepara una paella muy buena los domingos.",
        "El perro blanco corre por la playa.",
        "Por favor, abre la puerta de la cocina.",
        "Vamos a comprar pan, queso y manzanas en el mercado.",
        "Mañana viajamos a Barcelona en tren.",
        "La música suena muy bonita esta noche.",
        "¿Puedes ayudarme con mi maleta, por favor?",
        "Pablo bebe mucha agua cuando hace calor.",
        "El museo abre a las nueve de la mañana.",
        "Me gusta mucho pasear por el parque con mi familia.",
        "Hoy es un buen día para aprender algo nuevo.",
        "Los niños juegan al fútbol después de la escuela.",
        "Muchas gracias por tu paciencia y tu ayuda.",
        "Bajo la lluvia, la ciudad parece más tranquila.",
        "Quiero un café con leche y un bocadillo.",
    ],
    "fr": [
        "Bonjour, comment allez-vous aujourd'hui?",
        "Ma mère prépare une bonne soupe le dimanche.",
        "Le petit chat boit du lait dans la cuisine.",
        "Pouvez-vous ouvrir la fenêtre, s'il vous plaît?",
        "Nous allons au marché pour acheter du pain et des pommes.",
        "Demain, nous partons à Paris en train.",
        "Le musée ouvre à neuf heures du matin.",
        "Pierre a perdu son parapluie bleu au bureau.",
        "Je voudrais un café et un croissant, merci.",
        "Les enfants jouent au ballon après l'école.",
        "Il fait beau, allons nous promener au bord de l'eau.",
        "Merci beaucoup pour votre aide et votre patience.",
        "Une belle maison blanche se trouve près du pont.",
        "Où est la gare, s'il vous plaît?",
        "Ce livre est vraiment passionnant, je le recommande.",
        "Bonne nuit, à demain matin.",
    ],
    "de": [
        "Guten Morgen, wie geht es Ihnen heute?",
        "Meine Mutter backt am Sonntag einen Apfelkuchen.",
        "Der kleine Hund spielt im Garten mit dem Ball.",
        "Können Sie bitte das Fenster öffnen?",
        "Wir kaufen Brot, Butter und Milch auf dem Markt.",
        "Morgen fahren wir mit dem Zug nach Berlin.",
        "Das Museum öffnet um neun Uhr morgens.",
        "Paul hat seinen blauen Mantel im Büro vergessen.",
        "Ich möchte einen Kaffee und ein Brötchen, bitte.",
        "Die Kinder spielen nach der Schule Fußball.",
        "Vielen Dank für Ihre Hilfe und Ihre Geduld.",
        "Über der Brücke scheint die Sonne sehr hell.",
        "Pfeffer und Salz stehen neben dem Teller.",
        "Wo ist der Bahnhof, bitte?",
        "Dieses Buch ist wirklich spannend.",
        "Gute Nacht und bis morgen früh.",
    ],
    "cmn": [
        "你好，今天天气很好。",
        "我妈妈每个星期天做饭。",
        "我们明天坐火车去北京。",
        "请你打开窗户，好吗？",
        "我想喝一杯咖啡和一杯茶。",
        "小狗在公园里跑来跑去。",
        "谢谢你的帮助，我非常感谢。",
        "博物馆早上九点开门。",
        "孩子们放学以后踢足球。",
        "这本书非常有意思。",
        "我们去市场买面包和苹果。",
        "晚安，明天见。",
        "爸爸买了一把蓝色的雨伞。",
        "你叫什么名字？我叫王明。",
        "他每天早上跑步半个小时。",
        "这个城市的夜晚很漂亮。",
    ],
    # held out: evaluation only
    "it": [
        "Buongiorno, come stai oggi?",
        "Mia madre prepara la pasta ogni domenica.",
        "Il piccolo cane gioca nel giardino con la palla.",
        "Per favore, puoi aprire la finestra?",
        "Domani andiamo a Roma in treno.",
        "Vorrei un caffè e una brioche, grazie.",
        "I bambini giocano a calcio dopo la scuola.",
        "Il museo apre alle nove del mattino.",
        "Grazie mille per il tuo aiuto.",
        "Paolo ha perso il suo ombrello blu.",
        "Buona notte e a domani.",
        "Questa città è molto bella di sera.",
    ],
    "pt": [
        "Bom dia, como você está hoje?",
        "Minha mãe prepara um bolo aos domingos.",
        "O pequeno cachorro brinca no jardim com a bola.",
        "Por favor, pode abrir a janela?",
        "Amanhã vamos a Lisboa de comboio.",
        "Quero um café e um pão com manteiga, obrigado.",
        "As crianças jogam futebol depois da escola.",
        "O museu abre às nove da manhã.",
        "Muito obrigado pela sua ajuda.",
        "Paulo perdeu o seu guarda-chuva azul.",
        "Boa noite e até amanhã.",
        "Esta cidade é muito bonita à noite.",
    ],
    "nl": [
        "Goedemorgen, hoe gaat het vandaag?",
        "Mijn moeder bakt elke zondag een appeltaart.",
        "De kleine hond speelt in de tuin met de bal.",
        "Kunt u alstublieft het raam openen?",
        "Morgen gaan we met de trein naar Amsterdam.",
        "Ik wil graag een kop koffie en een broodje.",
        "De kinderen spelen voetbal na school.",
        "Het museum gaat om negen uur open.",
        "Hartelijk bedankt voor uw hulp.",
        "Pieter is zijn blauwe paraplu kwijt.",
        "Welterusten en tot morgen.",
        "Deze stad is erg mooi in de avond.",
    ],
}

# Extra training languages spoken from pseudo-words written in their own orthography: eSpeak
# applies that language's letter-to-sound rules, which adds phonotactics and vowel systems.
PSEUDO_LETTERS: dict[str, tuple[str, str]] = {
    # language: (consonant spellings, vowel spellings), space separated
    "pl": ("b c ch cz d dz f g h j k l ł m n p r s sz t w z ż rz", "a e i o u y ą ę ó"),
    "cs": ("b c č d f g h ch j k l m n p r ř s š t v z ž", "a á e é i í o u ú y"),
    "sv": ("b d f g h j k l m n p r s sj t v", "a e i o u y å ä ö"),
    "fi": ("h j k l m n p r s t v", "a e i o u y ä ö aa ii uu"),
    "tr": ("b c ç d f g h j k l m n p r s ş t v y z", "a e ı i o ö u ü"),
    "id": ("b c d g h j k l m n ng p r s t w y", "a e i o u"),
    "sw": ("b ch d f g h j k l m mb n nd ng p s t v w y z", "a e i o u"),
    "ro": ("b c d f g h j l m n p r s ș t ț v z", "a ă â e i o u"),
    "hu": ("b c cs d f g gy h j k l m n ny p r s sz t ty v z zs", "a á e é i o ó ö u ü"),
    "ru": ("б в г д ж з к л м н п р с т ф х ц ч ш щ", "а е и о у ы э ю я"),
    "en": ("b bl br ch d f g gr h j k l m n p pl pr r s sh sp st t th v w", "a e i o u ee oo ay ow"),
    "es": ("b c d f g j l ll m n ñ p r rr s t v z", "a e i o u"),
    "fr": ("b ch d f g j l m n p r s t v", "a e é è i o ou u eu on an in oi"),
    "de": ("b ch d f g h k l m n p pf r s sch t w z", "a e i o u ä ö ü ei au"),
}

HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
    "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
    "头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明社长水化本白妈爸吃"
    "喝买卖走跑飞鱼马牛羊猫狗书笔门窗路车船山河海风雨雪花草树木米饭茶菜肉蛋包布帽袜"
)

HELDOUT_LANGS = ["it", "pt", "nl"]
TRAIN_LANGS = ["en", "es", "fr", "de", "cmn"]
PSEUDO_ONLY_LANGS = [k for k in PSEUDO_LETTERS if k not in SENTENCES]


def _pseudo_word(rng: random.Random, lang: str) -> str:
    cons, vows = (s.split() for s in PSEUDO_LETTERS[lang])
    syl = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.85:
            syl.append(rng.choice(cons))
        syl.append(rng.choice(vows))
        if rng.random() < 0.3:
            syl.append(rng.choice(cons))
    return "".join(syl)


def make_text(rng: random.Random, lang: str, sentence_pool: list[str] | None = None) -> str:
    """One utterance of text: a real sentence, word salad from real sentences, or pseudo-words."""
    pool = sentence_pool if sentence_pool is not None else SENTENCES.get(lang, [])
    r = rng.random()
    if pool and r < 0.45:
        return rng.choice(pool)
    if lang == "cmn" and r < 0.8:
        n = rng.randint(3, 12)
        chars = [rng.choice(HANZI) for _ in range(n)]
        if n > 5 and rng.random() < 0.6:
            chars.insert(rng.randint(2, n - 2), "，")
        return "".join(chars) + rng.choice(["。", "？", "！"])
    if pool and r < 0.8 and lang != "cmn":
        words = " ".join(pool).replace(",", " ").replace(".", " ").replace("?", " ").split()
        n = rng.randint(3, 10)
        out = [rng.choice(words).strip("¿¡!;:") for _ in range(n)]
        if n > 4 and rng.random() < 0.6:
            i = rng.randint(1, n - 2)
            out[i] += ","
        if rng.random() < 0.15:
            out.insert(rng.randint(0, len(out)), str(rng.randint(2, 999)))
        return " ".join(out) + rng.choice([".", "?", "!"])
    if lang in PSEUDO_LETTERS:
        n = rng.randint(2, 7)
        words = [_pseudo_word(rng, lang) for _ in range(n)]
        if n > 3 and rng.random() < 0.5:
            words[rng.randint(0, n - 2)] += ","
        return " ".join(words) + "."
    return rng.choice(pool) if pool else "a"
