# ruff: noqa: E501 - the passages are prose; breaking Korean and Hindi sentences mid-word to fit would hurt them
"""Writes corpus.jsonl, queries.jsonl and qrels.txt of the os-rerank evaluation set from the tables below.

Every passage was written for os-rerank (nothing is copied from a dataset). Each topic is one query with the passages
that answer it (grade 2, or 1 for a partial answer) and distractors (grade 0, judged) that share the query's surface
words but not its meaning: "capital punishment" for "capital of the United States", 빨리 감기 (fast-forward) for
감기 (a cold), राजधानी एक्सप्रेस (a train) for राजधानी (capital). Filler passages on other subjects make up the rest.
Passage ids are assigned in a fixed shuffled order so that ids say nothing about relevance.

Run from the repository root: python data/eval/build.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (query id, query, [(grade, passage), ...]); grade 0 rows are the distractors.
TOPICS: list[tuple[str, str, list[tuple[int, str]]]] = [
    # --- English -------------------------------------------------------------------------------------------------
    ("en01", "What is the capital of the United States?", [
        (2, "Washington, D.C. is the seat of the federal government of the USA, home to Congress, the White House "
            "and the Supreme Court."),
        (1, "The District of Columbia was created in 1790 on land along the Potomac River chosen by George "
            "Washington himself."),
        (0, "Capital punishment in the United States is legal in some states and has been abolished in others."),
        (0, "The capital gains tax in the United States depends on income and on how long an asset was held."),
        (0, "Venture capital firms in the United States invested record sums in software start-ups last year."),
    ]),
    ("en02", "How do I reset my bank password?", [
        (2, "Forgot your online banking password? Open the sign-in page, choose 'Forgot credentials' and confirm "
            "the code sent to your phone to set a new one."),
        (0, "A river bank is the land alongside a river; each flood can reset its shape."),
        (0, "Password managers keep every password in an encrypted vault, so you only remember one password."),
        (0, "When a plane turns, the pilot holds a bank angle and then resets the wings to level flight."),
    ]),
    ("en03", "Why is the sky blue?", [
        (2, "Air molecules scatter short wavelengths of sunlight far more than long ones, so scattered blue light "
            "reaches our eyes from every direction overhead."),
        (0, "Blue Sky Airlines cancelled all flights after the storm, and nobody explained why."),
        (0, "The Sky Blues, as the club is nicknamed, won the cup final in front of a sold-out stadium."),
        (0, "Why is the ocean salty? Rivers carry dissolved minerals from rocks into the sea."),
    ]),
    ("en04", "apple nutrition facts", [
        (2, "Apple nutrition facts: a medium raw apple provides about 95 kilocalories, 4 grams of fibre and a little vitamin C, and almost "
            "no fat."),
        (0, "Apple reported record iPhone sales, and the facts about its quarterly results surprised analysts."),
        (0, "Nutrition facts labels must list calories, fat and sodium per serving; nutrition facts panels changed "
            "in 2016."),
        (0, "The Apple Watch can track nutrition if you log your meals in a third-party app."),
    ]),
    ("en05", "How long does it take to boil an egg?", [
        (2, "Lower the eggs into boiling water and boil them: about six minutes gives a runny yolk, and nine to ten minutes a "
            "firm one."),
        (0, "How long does it take to get a passport? It usually takes four to six weeks."),
        (0, "Egg donation: how long the process takes depends on the clinic and on the donor's cycle."),
        (0, "How long does it take to learn to drive? Most people need about forty hours of lessons."),
    ]),
    ("en06", "python install package", [
        (2, "To install a package in Python, run pip install followed by its name inside a virtual environment."),
        (0, "A python swallowed a package left on a porch, and a wildlife officer had to remove the package."),
        (0, "Install the package tracking app to see where your parcel is; every package gets its own number."),
        (0, "The reticulated python is the longest snake in the world."),
    ]),
    ("en07", "Who invented the telephone?", [
        (2, "Alexander Graham Bell is credited with the telephone: he received the first US patent for it in 1876, "
            "though Antonio Meucci and Elisha Gray did similar work."),
        (0, "Telephone scams: who is calling you? Never give a card number to a telephone caller."),
        (0, "Who invented the telephone number format used in Europe? The ITU sets the telephone numbering rules."),
        (0, "The telephone game, in which a whispered message passes along a line, shows how stories change."),
    ]),
    ("en08", "symptoms of a cold", [
        (2, "The common cold is a viral infection of the nose and throat: a runny nose, sneezing, a sore throat "
            "and tiredness for about a week."),
        (0, "A battery that is slow to start is one of the symptoms of cold weather damage in a car; cold also "
            "thickens the oil."),
        (0, "Historians disagree about the first symptoms of the Cold War between the former allies."),
        (0, "Cold brew coffee is steeped in cold water for twelve hours."),
    ]),
    ("en09", "jaguar speed", [
        (2, "A jaguar's top speed is about 80 km/h over short distances; the largest wild cat of the Americas "
            "relies on stealth and a powerful bite rather than stamina."),
        (0, "The Jaguar F-Type sports car reaches 300 km/h."),
        (0, "Speed cameras on the motorway caught the driver of a Jaguar saloon going at twice the legal limit late "
            "on a Sunday night."),
        (0, "Jacksonville's football team, the Jaguars, added speed to its offence in the draft."),
    ]),
    ("en10", "what is a bear market", [
        (2, "Investors call a prolonged fall of 20% or more in share prices from a recent peak a bear market, "
            "usually accompanied by widespread pessimism."),
        (0, "What is a bear doing at the market? A brown bear wandered into a market in a mountain town and ate the "
            "fruit."),
        (0, "The bear is the symbol of Bern, and the market there sells bear-shaped bread."),
        (0, "A bull market is a long rise in share prices."),
    ]),
    ("en11", "How to treat a burn at home", [
        (2, "For a minor burn, cool the skin under running water for 20 minutes, then cover it loosely with cling "
            "film; never put butter or ice on it."),
        (0, "How to burn a CD at home: insert a blank disc, open the burning software and treat the files as an "
            "audio project."),
        (0, "Burn-out at work: how to treat yourself kindly at home after a stressful week."),
        (0, "Calories burn faster at home if you climb the stairs."),
    ]),
    ("en12", "Is mercury in fish dangerous?", [
        (2, "Large predatory fish such as swordfish accumulate methylmercury, so pregnant women are advised to eat "
            "them rarely; salmon and sardines contain little mercury."),
        (0, "Freddie Mercury, the singer of Queen, loved fish and kept a koi pond at his London home."),
        (0, "Is the planet Mercury dangerous for spacecraft? Its surface swings from 430 °C by day to -180 °C at "
            "night."),
        (0, "Mercury is the smallest planet in the solar system."),
    ]),
    # --- Korean --------------------------------------------------------------------------------------------------
    ("ko01", "미국의 수도는 어디인가요?", [
        (2, "워싱턴 D.C.는 미국의 연방 정부가 있는 도시로, 백악관과 의회 의사당, 연방 대법원이 모여 있다."),
        (0, "미국의 사형 제도: 사형은 미국의 여러 주에서 여전히 합법이다."),
        (0, "단수 안내: 수도는 오후 6시에 다시 공급되며 문의는 관리사무소로 하면 된다."),
        (0, "미국의 독립 기념일은 7월 4일이다."),
    ]),
    ("ko02", "사과의 효능", [
        (2, "사과의 펙틴은 장 건강에 좋고, 껍질째 먹으면 식이섬유와 비타민 C를 더 많이 섭취할 수 있다."),
        (0, "진심 어린 사과의 효능: 갈등 뒤에 사과의 말을 먼저 건네면 관계 회복이 빨라진다는 연구가 있다."),
        (0, "녹차의 효능으로는 항산화 작용과 집중력 향상이 자주 꼽힌다."),
        (0, "사과의 말 한마디가 분쟁을 끝냈다."),
    ]),
    ("ko03", "배가 아플 때", [
        (2, "복통이 있을 때는 기름진 음식을 피하고 따뜻한 물을 조금씩 마시는 것이 좋으며, 배가 계속 아프고 열이 나면 "
            "맹장염일 수도 있으니 병원에 가야 한다."),
        (0, "배가 항구에 들어올 때 선원들은 닻을 내릴 때까지 갑판에 머문다."),
        (0, "배가 익을 때 과수원에서는 봉지를 씌워 새의 피해를 막는다."),
        (0, "배가 뒤집힐 때 구명조끼가 생명을 지킨다."),
    ]),
    ("ko04", "눈이 오는 이유", [
        (2, "구름 속 수증기가 영하의 온도에서 얼음 결정으로 자라 무거워지면 땅으로 떨어지는데, 이렇게 눈이 내린다."),
        (0, "눈이 자꾸 충혈되는 이유는 피로, 건조함, 알레르기 등 다양하며 인공눈물이 도움이 된다."),
        (0, "눈이 부시는 이유: 밝은 햇빛에 동공이 충분히 줄어들지 못하면 눈이 아프다."),
        (0, "비가 오는 날에는 교통사고가 늘어난다."),
    ]),
    ("ko05", "비행기 모드 켜는 법", [
        (2, "비행기 모드 켜는 법: 휴대폰 화면 위쪽을 아래로 쓸어내려 제어 센터를 연 뒤 비행기 아이콘을 누르면 모든 무선 통신이 꺼진다."),
        (0, "종이 비행기 접는 법: 날개를 대칭으로 접어야 비행기가 멀리 난다."),
        (0, "비행기 티켓 싸게 사는 법과 비행기 좌석 고르는 요령을 정리했다."),
        (0, "보일러 켜는 법은 모델마다 다르다."),
    ]),
    ("ko06", "감기 빨리 낫는 법", [
        (2, "감기 빨리 낫는 법은 따로 없다. 감기 바이러스에는 항생제가 듣지 않으므로 충분히 자고 물을 많이 마시며 쉬는 것이 회복을 앞당긴다."),
        (0, "빨리 감기 버튼을 누르면 영상이 두 배 빨리 재생된다."),
        (0, "머리 감기 전에 빗질을 하면 엉킴이 줄어든다."),
        (0, "상처가 빨리 낫는 법으로 습윤 밴드가 인기다."),
    ]),
    ("ko07", "한국 전쟁은 언제 일어났나", [
        (2, "6·25 전쟁은 1950년 6월 25일 북한군의 남침으로 시작되어 1953년 7월 정전 협정으로 멈췄다."),
        (1, "한국 전쟁에는 유엔군 16개국이 참전했다."),
        (0, "무역 전쟁은 언제 끝날까? 한국 수출 기업들이 관세 협상을 지켜보고 있다."),
        (0, "한국 전쟁 기념관은 서울 용산에 있으며 매일 문을 연다."),
    ]),
    ("ko08", "다리가 붓는 원인", [
        (2, "오래 서 있으면 체액이 종아리에 고여 다리가 부을 수 있고, 심장이나 신장 질환 때문일 수도 있다."),
        (0, "다리가 흔들린 원인 조사: 강풍과 공진 때문에 다리가 흔들려 한강 다리가 긴급 점검을 받았다."),
        (0, "무릎이 붓는 원인 중 하나는 관절염이다."),
        (0, "다리가 긴 새는 얕은 물에서 먹이를 찾는다."),
    ]),
    ("ko09", "은행 이자율 비교", [
        (2, "은행 이자율 비교: 여러 금융기관의 예금 금리를 한눈에 보려면 금융감독원의 금융상품 비교 공시를 이용하면 된다."),
        (0, "은행 열매는 가을에 떨어지며, 은행 냄새를 줄이려면 껍질을 바로 치워야 한다."),
        (0, "은행 나무 품종 비교: 수나무는 열매가 없어 가로수로 선호된다."),
        (0, "은행 창구 영업시간은 오전 9시부터 오후 4시까지다."),
    ]),
    ("ko10", "서울에서 부산까지 기차 시간", [
        (2, "서울역에서 부산역까지 기차 시간은 KTX로 약 2시간 30분, 무궁화호로는 5시간 남짓이다."),
        (0, "서울에서 부산까지 자전거로 국토 종주를 하는 데 보통 나흘이 걸린다."),
        (0, "기차 시간 알림 앱 리뷰: 출발 시간 알림 기능이 편리하다."),
        (0, "서울에서 부산까지 거리는 약 400킬로미터다."),
    ]),
    ("ko11", "고양이가 밥을 안 먹어요", [
        (2, "반려묘가 하루 이상 사료를 거부하면 지방간이 생길 수 있으니 동물병원에 데려가야 하며, 고양이가 스트레스를 "
            "받아도 식욕이 준다."),
        (0, "아이가 밥을 안 먹어요: 억지로 먹이기보다 간식을 줄이고 식사 시간을 정해 보세요."),
        (0, "고양이가 좋아하는 장난감 순위: 고양이가 가장 오래 가지고 논 것은 깃털 낚싯대였다."),
        (0, "강아지가 밥을 안 먹어요 라는 글이 게시판에 자주 올라온다."),
    ]),
    # --- Hindi ---------------------------------------------------------------------------------------------------
    ("hi01", "भारत की राजधानी क्या है", [
        (2, "नई दिल्ली देश की राजधानी है, जहाँ संसद भवन और राष्ट्रपति भवन स्थित हैं।"),
        (0, "राजधानी एक्सप्रेस क्या है? भारत की राजधानी एक्सप्रेस ट्रेनें भारत की सबसे तेज़ ट्रेनों में गिनी जाती हैं।"),
        (0, "भारत की जनसंख्या क्या है? भारत दुनिया का सबसे अधिक आबादी वाला देश है।"),
        (0, "भारत की मुद्रा रुपया है।"),
    ]),
    ("hi02", "सेब खाने के फायदे", [
        (2, "सेब खाने के फायदे: इस फल में पेक्टिन नामक फाइबर होता है जो पाचन सुधारता है; सेब को छिलके सहित खाना बेहतर है।"),
        (0, "खाने के बाद टहलने के फायदे: खाने के बाद दस मिनट चलने से ब्लड शुगर कम होता है।"),
        (0, "योग के फायदे अनेक हैं, जैसे लचीलापन और तनाव में कमी।"),
        (0, "खाने के तेल के दाम बढ़ गए हैं।"),
    ]),
    ("hi03", "आम का मौसम कब आता है", [
        (2, "अल्फांसो और दशहरी जैसे आम अप्रैल से जुलाई तक बाज़ार में मिलते हैं, सबसे ज़्यादा मई और जून में।"),
        (0, "आम तौर पर मानसून का मौसम जून में आता है और सितंबर तक रहता है।"),
        (0, "आम चुनाव का मौसम हर पाँच साल में आता है, जब पूरे देश में मतदान होता है।"),
        (0, "आम आदमी की ज़िंदगी महँगाई से कठिन हो गई है।"),
    ]),
    ("hi04", "सोना कितने का है", [
        (2, "आज सर्राफ़ा बाज़ार में 24 कैरेट सोना लगभग 75,000 रुपये प्रति दस ग्राम के भाव पर बिका।"),
        (0, "बच्चों के लिए रात में कितने घंटे सोना ज़रूरी है? डॉक्टर दस घंटे सोना सही मानते हैं।"),
        (0, "दोपहर में सोना सेहत के लिए अच्छा है या नहीं, इस पर राय बँटी हुई है।"),
        (0, "चाँदी के दाम में आज गिरावट रही।"),
    ]),
    ("hi05", "बैंक खाता कैसे खोलें", [
        (2, "बैंक में बचत खाता खोलने के लिए आधार कार्ड, पैन कार्ड और एक फोटो लेकर नज़दीकी शाखा जाएँ, या ऐप से वीडियो केवाईसी करें।"),
        (0, "बैंक की छुट्टियाँ: त्योहारों पर बैंक बंद रहते हैं, कैसे पता करें कि बैंक कब खुलेंगे।"),
        (0, "जाम ढक्कन वाली बोतल कैसे खोलें: ढक्कन को गर्म पानी में रखने से वह आसानी से खुल जाता है।"),
        (0, "बैंक ने ब्याज दरें घटाईं।"),
    ]),
    ("hi06", "सिर दर्द का इलाज", [
        (2, "सिर की पीड़ा में आराम करना, पानी पीना और डॉक्टर की सलाह से पैरासिटामोल लेना मदद करता है; बार-बार हो तो जाँच कराएँ।"),
        (0, "ट्रैफ़िक जाम शहर का सिर दर्द बन गया है, और इसका इलाज किसी के पास नहीं।"),
        (0, "कमर दर्द का इलाज फिजियोथेरेपी और नियमित व्यायाम से किया जाता है।"),
        (0, "दाँत दर्द का इलाज दंत चिकित्सक करते हैं।"),
    ]),
    ("hi07", "ताजमहल किसने बनवाया", [
        (2, "ताजमहल को मुग़ल बादशाह शाहजहाँ ने अपनी पत्नी मुमताज़ महल की याद में आगरा में यमुना किनारे बनवाया था।"),
        (0, "मुंबई का ताजमहल पैलेस होटल किसने बनवाया? इसे जमशेदजी टाटा ने 1903 में खुलवाया था।"),
        (0, "ताजमहल देखने का सबसे अच्छा समय सूर्योदय है; ताजमहल शुक्रवार को बंद रहता है।"),
        (0, "लाल किला किसने बनवाया, यह इतिहास की किताबों में दर्ज है।"),
    ]),
    ("hi08", "पानी कितना पीना चाहिए", [
        (2, "पानी कितना पीना चाहिए: एक वयस्क को दिन भर में लगभग दो से तीन लीटर पानी पीना चाहिए; गर्मी और व्यायाम में ज़रूरत बढ़ जाती है।"),
        (0, "पौधों को पानी कितना देना चाहिए? गमले की मिट्टी सूखी हो तभी पानी दें।"),
        (0, "कार के रेडिएटर में पानी कितना है, यह डैशबोर्ड पर दिखता है।"),
        (0, "दूध कितना पीना चाहिए, यह उम्र पर निर्भर है।"),
    ]),
    ("hi09", "क्रिकेट विश्व कप किसने जीता", [
        (2, "2023 के एकदिवसीय विश्व कप के फाइनल में ऑस्ट्रेलिया ने भारत को हराकर छठी बार खिताब अपने नाम किया।"),
        (1, "1983 में कपिल देव की कप्तानी में भारत पहली बार विश्व चैंपियन बना था।"),
        (0, "फुटबॉल विश्व कप 2022 अर्जेंटीना ने जीता; विश्व कप फाइनल में मेसी ने दो गोल किए।"),
        (0, "क्रिकेट के नियम: विश्व कप में हर टीम पचास ओवर खेलती है।"),
    ]),
    ("hi10", "गंगा नदी कहाँ से निकलती है", [
        (2, "भागीरथी उत्तराखंड में गंगोत्री ग्लेशियर के गोमुख से निकलती है और देवप्रयाग में अलकनंदा से मिलकर आगे गंगा कहलाती है।"),
        (0, "गंगा नदी की सफ़ाई योजना कहाँ तक पहुँची? गंगा नदी में अब भी कई नाले गिरते हैं।"),
        (0, "गंगा कावेरी एक्सप्रेस कहाँ से निकलती है? यह ट्रेन छपरा से चलती है।"),
        (0, "यमुना नदी दिल्ली से होकर बहती है।"),
    ]),
    ("hi11", "मोबाइल चार्ज नहीं हो रहा", [
        (2, "मोबाइल फोन चार्ज न हो तो पहले केबल और एडाप्टर बदलकर देखें और चार्जिंग पोर्ट में जमी धूल साफ़ करें।"),
        (0, "मोबाइल रिचार्ज नहीं हो रहा हो तो ऑपरेटर का सर्वर देखें; मोबाइल रिचार्ज में कभी-कभी देरी होती है।"),
        (0, "पुलिस ने अदालत में चार्ज शीट दाखिल नहीं की, इसलिए आरोपी को ज़मानत मिल गई।"),
        (0, "मोबाइल की स्क्रीन टूट जाए तो नई लगवानी पड़ती है।"),
    ]),
]

# Passages on other subjects, judged for no query.
FILLERS: list[str] = [
    "Paris has been the capital of France since the tenth century, apart from brief interruptions.",
    "Canberra was purpose-built as the capital of Australia after Sydney and Melbourne could not agree.",
    "The Amazon river carries more water than any other river on Earth.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "A marathon is 42.195 kilometres long, a distance fixed at the 1908 London Olympics.",
    "Honey never spoils if it is kept sealed, because its sugar content is too high for bacteria.",
    "The Great Wall of China was built and rebuilt over many centuries.",
    "Mount Everest is 8,849 metres high according to the 2020 survey.",
    "Bread rises because yeast produces carbon dioxide while it ferments the sugars in the dough.",
    "The Pacific is the largest and deepest of Earth's oceans.",
    "Copper turns green over time as it reacts with air and moisture.",
    "Violins are usually made of spruce and maple.",
    "Penguins live almost exclusively in the Southern Hemisphere.",
    "Tea was first drunk in China and later spread along trade routes.",
    "The Moon's gravity causes the tides of the oceans.",
    "Chess originated in India around the sixth century.",
    "A leap year adds a day to February every four years, with some exceptions.",
    "The human heart beats about 100,000 times a day.",
    "Lighthouses guide ships away from rocks at night.",
    "Solar panels convert sunlight into electricity using semiconductors.",
    "Owls can turn their heads about 270 degrees.",
    "A haiku has three lines of five, seven and five syllables.",
    "The printing press spread across Europe in the fifteenth century.",
    "Bamboo is one of the fastest-growing plants in the world.",
    "The Sahara is the largest hot desert on Earth.",
    "Bees communicate the location of flowers with a waggle dance.",
    "Glaciers store about 69 percent of the world's fresh water.",
    "The piano has 88 keys.",
    "Octopuses have three hearts and blue blood.",
    "A home battery stores solar power for use at night.",
    "The museum opens at nine and closes at five on weekdays.",
    "Rice is the main food for more than half of the world's population.",
    "서울은 대한민국의 수도이자 가장 큰 도시다.",
    "한글은 1443년 세종대왕이 창제했다.",
    "제주도는 화산 활동으로 만들어진 섬이다.",
    "김치는 배추와 고춧가루, 젓갈로 담근다.",
    "한라산은 남한에서 가장 높은 산이다.",
    "부산은 한국에서 두 번째로 큰 도시이자 가장 큰 항구 도시다.",
    "태권도는 한국의 전통 무예로 올림픽 정식 종목이다.",
    "추석에는 가족이 모여 송편을 빚고 차례를 지낸다.",
    "경주는 신라의 수도였으며 불국사와 석굴암이 있다.",
    "한강은 서울을 동서로 가로질러 흐른다.",
    "지하철 2호선은 서울 도심을 순환한다.",
    "비빔밥은 밥 위에 나물과 고추장을 얹어 비벼 먹는 음식이다.",
    "설악산의 단풍은 10월 중순에 절정을 이룬다.",
    "한국의 여름은 덥고 습하며 장마가 있다.",
    "독도는 동해에 있는 섬이다.",
    "판소리는 한 명의 소리꾼과 고수가 함께하는 전통 음악이다.",
    "인천국제공항은 영종도에 있다.",
    "겨울철에는 난방비 부담이 커진다.",
    "도서관에서 책을 빌리려면 회원증이 필요하다.",
    "커피 한 잔에는 약 100밀리그램의 카페인이 들어 있다.",
    "반도체는 한국의 최대 수출 품목이다.",
    "봄에는 벚꽃 축제가 전국에서 열린다.",
    "우리 동네 시장은 일요일에 쉰다.",
    "등산할 때는 물과 간식을 챙기는 것이 좋다.",
    "मुंबई भारत की आर्थिक राजधानी कहलाती है।",
    "हिमालय दुनिया की सबसे ऊँची पर्वत श्रृंखला है।",
    "दीवाली रोशनी का त्योहार है और कार्तिक अमावस्या को मनाई जाती है।",
    "हिंदी देवनागरी लिपि में लिखी जाती है।",
    "चाय भारत में सबसे लोकप्रिय पेय है।",
    "केरल को ईश्वर का अपना देश कहा जाता है।",
    "योग की शुरुआत प्राचीन भारत में हुई थी।",
    "गोवा अपने समुद्र तटों के लिए प्रसिद्ध है।",
    "रेलवे भारत में सबसे बड़ा नियोक्ताओं में से एक है।",
    "बाजरे की रोटी सर्दियों में खाई जाती है।",
    "जयपुर को गुलाबी शहर कहा जाता है।",
    "मोर भारत का राष्ट्रीय पक्षी है।",
    "सूरज की रोशनी से विटामिन डी बनता है।",
    "होली रंगों का त्योहार है।",
    "भारतीय रिज़र्व बैंक देश का केंद्रीय बैंक है।",
    "कोलकाता में ट्राम अब भी चलती है।",
    "सर्दियों में दिल्ली में कोहरा छा जाता है।",
    "पुस्तकालय रविवार को बंद रहता है।",
    "बारिश के मौसम में सड़कों पर पानी भर जाता है।",
    "गाय का दूध कैल्शियम से भरपूर होता है।",
    "लोकसभा के सदस्य पाँच साल के लिए चुने जाते हैं।",
    "शतरंज का खेल भारत में चतुरंग के नाम से शुरू हुआ।",
    "नींबू में विटामिन सी भरपूर होता है।",
    "बच्चों को रोज़ एक घंटा खेलना चाहिए।",
]


def build() -> tuple[list[dict[str, str]], list[dict[str, str]], list[tuple[str, str, int]]]:
    """(corpus, queries, judgments) with passage ids assigned in a fixed shuffled order."""
    texts: list[str] = []
    owner: list[tuple[str, int] | None] = []
    for qid, _, passages in TOPICS:
        for grade, text in passages:
            texts.append(text)
            owner.append((qid, grade))
    for text in FILLERS:
        texts.append(text)
        owner.append(None)
    assert len(set(texts)) == len(texts), "duplicate passage"
    order = list(range(len(texts)))
    random.Random(20261122).shuffle(order)
    ids = {slot: f"p{n:03d}" for n, slot in enumerate(order, 1)}
    corpus = [{"id": ids[slot], "passage_text": texts[slot]} for slot in order]
    queries = [{"id": qid, "text": text} for qid, text, _ in TOPICS]
    qrels = [(o[0], ids[slot], o[1]) for slot, o in enumerate(owner) if o is not None]
    qrels.sort(key=lambda r: (r[0], r[1]))
    return corpus, queries, qrels


def main() -> None:
    corpus, queries, qrels = build()
    with open(HERE / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in corpus)
    with open(HERE / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    with open(HERE / "qrels.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{qid} 0 {doc} {grade}\n" for qid, doc, grade in qrels)
    print(f"{len(corpus)} passages, {len(queries)} queries, {len(qrels)} judgments")


if __name__ == "__main__":
    main()
