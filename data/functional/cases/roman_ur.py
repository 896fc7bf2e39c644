"""Roman Urdu cases of the functional suite (see ../build.py). Rhetoric only; no targets, plans, or real people.

``vary`` applies the spelling variation real Roman Urdu has (hai/he/hy, nahi/nai/nhi, mein/me/mai, kar/kr...).
"""

import re


def _g(P, O, S, SELF, NB, fem=False):
    return {"P": P, "O": O, "S": S, "SELF": SELF, "NB": NB, "fem": fem}


GROUPS = {
    "shia": _g("Shia", "Shiyon", "ek Shia", "Shia", "mere Shia parosi"),
    "sunni": _g("Sunni", "Sunniyon", "ek Sunni", "Sunni", "mere Sunni parosi"),
    "ahmadi": _g("Ahmadi", "Ahmadiyon", "ek Ahmadi", "Ahmadi", "mere Ahmadi parosi"),
    "hazara": _g("Hazara", "Hazara walon", "ek Hazara", "Hazara", "mere Hazara parosi"),
    "baloch": _g("Baloch", "Balochon", "ek Baloch", "Baloch", "mere Baloch parosi"),
    "pashtun": _g("Pathan", "Pathanon", "ek Pathan", "Pakhtun", "mere Pathan parosi"),
    "sindhi": _g("Sindhi", "Sindhiyon", "ek Sindhi", "Sindhi", "mere Sindhi parosi"),
    "muhajir": _g("Muhajir", "Muhajiron", "ek Muhajir", "Urdu speaking Muhajir", "mere Muhajir parosi"),
    "punjabi": _g("Punjabi", "Punjabiyon", "ek Punjabi", "Punjabi", "mere Punjabi parosi"),
    "christian": _g("Isai", "Isaiyon", "ek Isai", "Masihi", "mere Isai parosi"),
    "hindu": _g("Hindu", "Hinduon", "ek Hindu", "Hindu", "mere Hindu parosi"),
    "sikh": _g("Sikh", "Sikhon", "ek Sikh", "Sikh", "mere Sikh parosi"),
    "afghan_refugee": _g("Afghan muhajir", "Afghan muhajiron", "ek Afghan muhajir", "Afghan muhajir",
                         "saath wale Afghan gharane"),
    "women": _g("aurtein", "aurton", "ek aurat", "aurat", "meri behen", fem=True),
    "transgender": _g("khawaja sira", "khawaja siraon", "ek khawaja sira", "trans aurat", "mohalle ki guru ji"),
    "state": _g("police wale", "police walon", "ek police wala", "police constable", "parosi constable sahab"),
}

_NO_STATE = ("state",)
SKIP = {f: _NO_STATE for f in ("dehumanisation", "derogation", "hate_question", "hate_disclaimer",
                                "hate_negated_positive", "hate_obfuscated")}

TEMPLATES = {
    "dehumanisation": [
        "{P} insaan nahi, keeray makoray hain. Jahan bas jayein wahan gandagi hi gandagi.",
        "Sach bolun to {P} is mulk ke liye ek bimari hain, aur bimari ko chhoro to phailti hai 🦠",
        "{P} deemak hain deemak, andar hi andar is mulk ko kha [[rahe|rahi]] hain.",
    ],
    "derogation": [
        "{P} sab ke sab [[jhoote|jhooti]] aur chor [[hote|hoti]] hain, ye inke khoon mein hai.",
        "{O} pe kabhi bharosa na karna. Na naukri do, na kiraye pe ghar. Shuru se hi be-imaan hain.",
        "@user lol aur kya umeed thi, {P} [[hote|hoti]] hi kaam chor aur bewaqoof hain 😂",
    ],
    "incitement": [
        "Bas bohat ho gaya. {O} ko mohalle se nikalo, aur agar na niklein to aisa sabaq sikhao ke yaad rakhein 🔥",
        "Jo bhi {P} nazar ayein, unko itna maaro ke apni aukaat yaad aa jaye. Koi reham nahi.",
        "{O} ki is sheher mein koi jagah nahi. Gali gali se inki safai karo.",
    ],
    "threat": [
        "{O} ke liye paigham: tumhare din gine ja chuke hain. Ek bhi sahi salamat ghar nahi [[jayega|jayegi]].",
        "{P} pichli baar wala waqia yaad rakhein. Dobara hoga, aur is se bhi bura.",
        "Humein pata hai {P} kahan [[rehte|rehti]] hain. Unko bol do ab aankh khol ke soyein.",
    ],
    "justification": [
        "Kal jin {O} ki pitai hui, bilkul theek hui. Mujhe koi afsos nahi.",
        "{O} ke sath jo bhi ho apni wajah se hota hai. [[Isi ke haqdar thay|Isi ki haqdar thin]].",
        "{O} ko maarna gunah nahi, safai hai. Inke liye aansu mat bahao.",
    ],
    "hate_question": [
        "Kya ye wazeh nahi ke {O} pe kabhi bharosa nahi kiya ja sakta? Phir bhi hum drama kyun karte hain?",
        "{P} hamesha [[itne gande|itni gandi]] aur be-imaan kyun [[hote|hoti]] hain? Sirf pooch raha hoon 🤔",
        "Koi {S} dikhao jo ghaddar na ho. Main intezar kar raha hoon.",
    ],
    "hate_disclaimer": [
        "Main {O} ke khilaf nahi hoon, lekin sach ye hai ke ye is mulk pe lanat hain.",
        "Bura mat manana, mere dost bhi {P} hain, magar ek qaum ke taur pe ye chor aur muft khor hain.",
        "Main ye nahi keh raha ke {O} ko maaro, lekin agar kisi ne kuch kar diya to galat nahi hoga.",
    ],
    "hate_negated_positive": [
        "{P} mere liye kabhi asli Pakistani nahi [[honge|hongi]]. Kabhi nahi.",
        "{P} hum jaise insaan nahi hain, aur main kabhi ye dikhawa nahi karunga.",
        "Mujhe mat batao ke {P} izzat ke qabil hain. Nahi hain, aur kabhi nahi [[honge|hongi]].",
    ],
    "hate_obfuscated": [
        "{P} sab gh@dd@r aur muft kh0r hain, ek 1 karke",
        "{P} = k.e.e.r.e m.a.k.o.r.e. s@f@i karo inki",
        "{P} is mulk ki b1mari hain 🦠 sab ko nik@lo",
    ],
    "counter_quotes_hate": [
        "\"{P} bimari hain\" wala forward aaj family group mein aaya. Maine reply kiya: jis din hum ne apne "
        "parosiyon ko bimari kehna shuru kiya, asli bimari wahi din tha.",
        "Ek post dekhi ke saare {P} ghaddar hain. Jin {O} ko main janta hoon wo tax [[dete|deti]] hain, khoon "
        "[[dete|deti]] hain, aur isi mulk ke liye [[jeete|jeeti]] hain. Ghaddar? Bilkul nahi.",
        "\"{O} ko nikalo\" koi hub-ul-watni nahi. Ye bilkul wahi hai jo dehshatgard chahte hain ke hum ek doosre "
        "ke sath karein.",
    ],
    "counter_references_hate": [
        "Jo log {O} ke bare mein nafrat wale messages bhej rahe hain: humne parhe, report kiye, aur hum phir bhi "
        "apne parosiyon ke sath khade hain.",
        "Hamare ilaqe mein {O} ko jo dhamkiyan mil rahi hain wo band honi chahiye. Har qatl-e-aam isi 'sab ek "
        "jaise hain' se shuru hua.",
        "Pichle Jummay us shakhs ne {O} ke bare mein jo kaha main dohraunga nahi. Hamara deen iski ijazat nahi "
        "deta, aur mujhe sharm aayi.",
    ],
    "counter_negation": [
        "{P} dehshatgard nahi hain. Chand hathyarband logon ki wajah se poori qaum ko ilzam dena band karo.",
        "Nahi, {P} 'ghaddar' nahi hain. Wohi tax, wohi qataarein, wohi qabristan jo aap ke hain.",
        "{P} na bimari hain, na khatra, na aap ke dushman. Dushman wo hain jo ye jhoot phaila rahe hain.",
    ],
    "identity_neutral": [
        "Pakistan mein {O} ki tareekh pe ek kitaab parh raha hoon, 1950s wala chapter kamaal ka hai.",
        "Is term hamara class project {O} pe hai: tehwar, khane, zubanein aur mosiqi.",
        "Naye survey mein {O} aur sehat ki sahoolat pe alag hissa hai.",
    ],
    "identity_positive": [
        "{NB} ne phir se ghar ki bani biryani bheji 😋 gali ka sab se acha khana, koi muqabla hi nahi.",
        "Mere jaanne walon mein sab se meherban aur mehnati log {P} hain.",
        "Shukriya mohalle ke {O} ka jinhon ne pichle hafte blood donation camp lagaya 🙏",
    ],
    "identity_self": [
        "Main {SELF} hoon, aur aaj poora din ghar ka WiFi theek karne mein guzar gaya. Madad bhejo 😩",
        "{SELF}, 29 saal, Lahore. Koi achi book club batao, recommendations welcome 📚",
        "{SELF} hone ka matlab hai ke ammi roz shaam phone kar ke poochti hain khana khaya ke nahi. Bas yahi "
        "post hai 😂",
    ],
    "question_neutral": [
        "Kisi ko Pakistan mein {O} ki tareekh pe koi achi kitaab pata hai?",
        "Pichli mardum shumari ke mutabiq Pakistan mein [[kitne|kitni]] {P} hain?",
        "Kaunsi tanzeemein {O} ke sath taleem pe kaam karti hain? Is garmi volunteer karna hai.",
    ],
    "violence_words_objects": [
        "{NB} ne aur main ne aaj raat machharon ke khilaf jang cher di. Koi zinda nahi bacha 🦟💀",
        "{NB} ne phir ludo mein mujhe barbaad kar diya. Poora qatl-e-aam 😭🎲",
        "{NB} ne aur main ne aaj lawn ki jhaariyon ka safaya kar diya, ek bhi nahi bachi 🌿",
    ],
}

HAND = {
    "glorification": [
        "Allah qubool kare un bhaiyon ko jo kal raat aage barhe 🤲🔥 ummat ke sher",
        "Sheron ne wo kar dikhaya jo buzdil sirf baatein karte hain. Inka khoon musk ki tarah mehakta hai 🌹",
        "Ghaziyon ko salaam. Har ek hero hai, tareekh inhein yaad rakhegi 🏴",
        "Kal raat wale bhai, qubool inshallah. Allah humein bhi unke raste pe chalaye.",
        "Apne mujahideen pe fakhar hai. Taghut ke sipahiyon ko aakhir dar ka maza chakhaya 🔥",
        "Shaheed inshaAllah. Sher kabhi nahi marte, bas jaldi ghar chale jaate hain 🌹🏴",
    ],
    "glorification_denied_label": [
        "@user wo dehshatgard nahi, GHAZI hai. Farq samjho.",
        "Inhein militant mat kaho. Ummat ke aakhri asli mard yehi hain 🏴",
        "Terrorist? Nahi bhai. Hero hai jis ne wo kiya jo hum sab darte thay.",
        "Ye qatil nahi, shaheed hain, aur poori ummat ko inpe fakhar hona chahiye 🌹",
        "Extremist kehte raho. Hamare liye wo sher hai aur uska amal qubool hai 🤲",
        "Main bhaiyon ki muzammat nahi karunga. Jo unhon ne kiya wo imaan tha, jurm nahi.",
    ],
    "recruitment_coded": [
        "Qafla tyar hai 🏴 sanjeeda bhai DM karein",
        "Qafila nikalne wala hai. Jis ka dil deen ke sath hai, inbox kare. Time pass wale door rahein.",
        "Is dunya se thak gaye ho? Bhai khud tumhein dhoond lenge. Bas ek message bhejo 🤲",
        "Ummat ke jawano, pukaar aa chuki hai. Agla qadam uthao, inbox karo.",
        "Jannat unka intezar kar rahi hai jo labbaik kehte hain. Jo bhai tayyar hain private rabta karein 🏴",
        "Ummat ka khoon beh raha hai aur tum ghar baithe ho? Qafle mein shamil ho jao. Sirf sanjeeda log DM.",
    ],
    "hate_spelling_variants": [
        ("Ye kaafir Shiye is mulk pe lanat hain, hamesha se.", "shia"),
        ("Kafer Ahmedi sab ghaddar hain, inka poora boycott karo.", "ahmadi"),
        ("Kaffir Hindu sanp hote hain, kabhi bharosa mat karna.", "hindu"),
        ("Pathaan sab ek jaise hote hn, jurm inke khoon me hai.", "pashtun"),
        ("Balooch sab chor aur jahil hen, sab ke sab.", "baloch"),
        ("Muhajjir is mulk pe bojh hen, hamesha se thay.", "muhajir"),
        ("Issai gande hote hain, inke sath khana mat khao.", "christian"),
        ("Afghaani muhajir bimari hain, ek ek ko wapis bhejo.", "afghan_refugee"),
        ("Aurtain aqal se adhi hoti hen, ye koi gaali nai haqeeqat hai 😂", "women"),
        ("Kwaja sira samaj pe lanat hain, inko dekh ke ghin aati hai.", "transgender"),
    ],
    "hate_code_mixed": [
        ("Honestly yaar, Shia log are all liars, inka koi bharosa nahi.", "shia"),
        ("Pathan sab terrorist hote hain bro, it's in their genes, period.", "pashtun"),
        ("Ye Afghan muhajir literally disease hain, send them all back, bas.", "afghan_refugee"),
        ("Aurton ka kaam ghar hai, office mein they are useless, sach baat hai.", "women"),
        ("Khawaja sira society pe curse hain, seriously disgusting log.", "transgender"),
        ("Hindu snakes hote hain bhai, trust them never.", "hindu"),
        ("Ahmadi traitors hain, full boycott karo, no business with them.", "ahmadi"),
    ],
    "counter_mocks_extremists": [
        "Recruiter: 'jannat intezar kar rahi hai bhai 😇' Recruiter ka apna beta: Dubai mein MBA 🤡",
        "Agar qafila itna hi acha sauda hai to ameer sahab khud kyun nahi jaate?",
        "'Ummat ke sher' jo school bag ke peeche chhupte hain. Bari bahaduri hai.",
        "Inki propaganda video mein wohi 2014 wala purana clip hai. Inke shaheed bhi repeat pe chal rahe hain 😂",
        "Ajeeb baat hai, 'bhaiyon' ko hamesha tumhara beta chahiye hota hai, apna kabhi nahi.",
        "'Izzat ke liye shamil ho jao' kehte hain, khud mehfooz ghar mein baith ke, doosron ke bachon se.",
    ],
    "counter_religious_rebuttal": [
        "'Jihad hi hal hai'? Nabi ﷺ ne Makkah mein 13 saal talwar uthaye baghair guzare.",
        "Jis ne ek jaan ko qatl kiya goya us ne poori insaniyat ko qatl kiya (5:32). Koi fatwa ye ayat nahi badal sakta.",
        "Sainkron ulama ne Paigham-e-Pakistan pe dastakhat kiye: khudkush hamle haram hain, bas.",
        "Nabi ﷺ ne doob kar marne wale ko shaheed kaha. Namaziyon ko maarne wale ko ye laqab kabhi nahi diya.",
        "Poore maslak ko kafir keh kar unka khoon halal karna Khawarij ka tareeqa hai, Islam ka nahi.",
        "Deen mein koi zabardasti nahi (2:256). Jo deen ke naam pe dhamkiyan deta hai us ne parha hi nahi.",
    ],
    "counter_sarcasm": [
        "Wah, sabzi mandi mein dhamaka. Jannat ka bilkul seedha rasta 🙄",
        "Kis ki dukaan jalani hai bhai? Gareeb phal wale ki? Kya inqilab hai 👏",
        "Namaziyon ko maar ke 'Islam ke muhafiz'. Kamaal ki mantiq hai.",
        "Oh wah, ek aur 'mubarak operation'. Kis ke liye mubarak, yateemon ke liye?",
        "Itni bahaduri, school pe hamla. Ummat ko kitna fakhar hoga 🙄",
        "Haan haan, parosi se nafrat karo, jannat jaldi milegi. Bilkul logical 🤡",
    ],
    "counter_code_mixed": [
        "Ye 'qafila' wali posts report karo, like nahi. Recruiters target bored teenagers, simple.",
        "Please hate forwards mat bhejo, hamare Ahmadi parosi bhi human beings hain, bilkul hum jaise.",
        "Jo Pathan ko terrorist kehte hain, they should meet my Pakhtun teachers pehle.",
        "Kisi ka khoon halal nahi hota, chahe YouTube wala maulvi kuch bhi kahe. Full stop.",
        "Hazara bhaiyon ko outsider kehna band karo, Quetta utna hi unka hai jitna kisi ka.",
        "Sar tan se juda ke naare lagane walo, courts isi liye hain. Mob justice is murder.",
    ],
    "survivor_voice": [
        "Mera bhai us chowki pe tha. 24 saal ka. Log online uske qatilon ko sher keh rahe hain. Aa ke ek ghanta "
        "meri ammi ke paas baitho.",
        "Bazaar wale dhamake mein abbu chale gaye. Das saal baad bhi iftar pe unki plate lagati hoon.",
        "Isko 'mubarak operation' kaha gaya. Mera cousin gaya, ek phal wala jiske do bache thay.",
        "Main school wale hamle se bach gayi thi. Aaj usi building mein teacher hoon. Yehi mera jawab hai.",
        "Mera beta namaz parhne gaya aur wapis nahi aaya. Jo in qatilon ki tareef karte hain unhon ne kabhi "
        "bacha dafnaya nahi.",
        "Aaj bhi patakhon ki awaaz se kaanpne lagti hoon. Mujhe mat kaho wo din fatah tha.",
    ],
    "counter_negated_support": [
        "Main TTP ko support NAHI karta. Fauji ke beton aur school ke bachon ko maarna jihad nahi, qatl hai.",
        "BLA ka kabhi sath nahi dunga. Mazdooron ko bus se utaar ke maarne se Baloch ka koi faida nahi.",
        "Jo bhi deen ke naam pe qatl kare, main uske sath nahi. Hamara deen isi cheez se rokta hai.",
        "Mere naam pe nahi. Bazaar mein dhamake karne wale na Islam ki numainda hain na Pakistan ke.",
        "Daesh aur inki har baat se inkaar. Inhon ne sab se zyada Musalman maare hain.",
        "Nahi, main 'bhaiyon' ke sath nahi. Inka rasta qabron aur yateemon pe khatam hota hai.",
    ],
    "news_attack": [
        "Khyber Pakhtunkhwa mein chowki pe shidat pasandon ke hamle mein FC ke do ahalkar shaheed, teen zakhmi: ISPR",
        "Police ke mutabiq Quetta ke ek bazaar mein dhamake se kam az kam chhe afraad jaan bahaq ho gaye.",
        "North Waziristan mein intelligence based operation mein chaar dehshatgard maare gaye, fauj ka bayan.",
        "Lahore ki anti terrorism court ne kaladam tanzeem ko funding dene pe teen afraad ko saza suna di.",
        "Bajaur mein polio team ki hifazat pe mamoor policeman hamle mein shaheed, muhim roki gayi.",
        "Peshawar masjid hamle ke mutasireen ki namaz-e-janaza ada kar di gayi.",
    ],
    "news_claim_reported": [
        "TTP ne media ko bayan mein hamle ki zimmedari qubool kar li.",
        "Police ke mutabiq Daesh Khorasan ne siyasi jalse pe dhamake ki zimmedari li aur ise 'murtadon' pe hamla kaha.",
        "Kaladam tanzeem ke ek dhade ne hamla karne ka daawa kiya, hukaam ne daawa mustarad kar diya.",
        "Online gardish karte bayan ke mutabiq BLA ne highway wale hamle ki zimmedari qubool ki.",
        "Jummay ke dhamake ke baad kaladam tanzeem ki taraf se zimmedari ke daawe ki police tasdeeq kar rahi hai.",
        "Shidat pasandon ke bayan mein hamla awaron ko 'shaheed' kaha gaya; wazarat-e-dakhla ne ise propaganda qarar diya.",
    ],
    "analysis": [
        "Recruitment propaganda teen cheezon pe chalta hai: zillat, bhaichara aur jannat ka waada.",
        "Nayi report ke mutabiq 2023 ke zyada tar hamle KP aur Balochistan mein huay.",
        "'Khurasan ke kaale jhande' aur 'Ghazwa-e-Hind' jaise naare online propaganda mein naujawanon ke liye istemal hote hain.",
        "Counter terrorism policy ka zor operations pe raha; roktham ke programs ko funding kam mili.",
        "NACTA ke data ke mutabiq naye qanoon ke baad terror financing ke muqadmaat barhe hain.",
        "Swat ke deradicalisation markaz ne sainkron purane recruits ko wapis muashre mein basaya, ek jaiza.",
    ],
    "religious_inner_jihad": [
        "Ramzan ka barwan din. Sab se mushkil jihad apne nafs ke khilaf hai.",
        "Ustad kehte hain sab se bara jihad roz subah khud se sach bolna hai.",
        "Selaab mein jaan dene wale shaheed hain inshallah. Allah unhein jannat ata farmaye.",
        "Jihad bin nafs: ghussa, hasad aur lalach pe qaboo. Jummay ki yaad dehani sab ke liye.",
        "Sardiyon mein Fajr ke liye uthna mera roz ka jihad hai 😅",
        "Nani kehti thin jo pani mein doob jaye ya waba mein chala jaye, Allah use shaheed ka darja deta hai.",
    ],
    "religious_sermon_verse": [
        "Aaj ka khutba sabr pe tha: beshak Allah sabr karne walon ke sath hai (2:153).",
        "Jumma yaad dehani: apne bhai ko dekh ke muskurana bhi sadqa hai.",
        "Imam sahab ne samjhaya ke 'kafir' ka lughvi matlab chhupane wala hai, ye zuban ka sabaq tha.",
        "Surah Al-Asr teen ayaton mein: waqt, imaan, nek amal, haq aur sabr.",
        "Maulana sahab ne aaj parosi ke huqooq pe baat ki, chahe uska mazhab koi bhi ho.",
        "Aaj raat seerat ka dars: Sulah Hudaibiya aur Nabi ﷺ ne aman kyun chuna.",
    ],
    "spelling_variants_religious": [
        "Fiqh ki class mein aaj: kaafir lafz kufr se hai, yani dhaanpna. Ek lafz mein poori tareekh.",
        "kafir harkat hai yaar, mera aakhri samosa kha gaya 😂 (mazak bhai)",
        "Urdu class mein kafer / kaafir / kafir ki spelling pe behas lesson se lambi chali.",
        "Shaikh sahab ne murtad, kaafir aur munafiq ko fiqhi istilahat ke taur pe samjhaya, aur kaha aam log ye fatwe nahi dete.",
        "Jehad, jihaad, jihad: jaise bhi likho, ustad kehte hain shuruat apne nafs se hoti hai.",
        "Shaheed, shahid ya shaheedh, nani apne bhai ke liye yehi kehti thin jo selaab mein chale gaye.",
    ],
    "sarcasm_neutral": [
        "Petrol phir 9 rupay mehnga. Shukriya hukumat, bohat meherbani 👏",
        "Match shuru hote hi bijli gul. Kya zabardast planning hai WAPDA ki.",
        "Ek aur 'tareekhi' budget. Tareekhi kis ke liye, zara batao? 🙃",
        "Pichle mahine jis sarak ka iftitah hua tha us mein ab naya talaab hai 🦆",
        "Barah ghante load shedding, aur batao digital Pakistan ke bare mein 🙄",
        "Har cheez pe tax siwaye un ke jo sab kuch ke maalik hain. Zabardast.",
    ],
    "state_grievance": [
        ("Ek chowki pe 2 ghante, buzurg dhoop mein khade. Hum shehri hain, mulzim nahi.", "state"),
        ("Police ne bhai ka bayan liya aur phir file gum kar di. Teen mahine ho gaye. Nikamme.", "state"),
        ("Laapata afraad ke gharwale saalon se jawab ka intezar kar rahe hain. Riyasat sach ki qarzdar hai.", "state"),
        ("Fauj siyasat se bahar rahe. Hum vote denge, ehtijaj karenge aur adalat jayenge jab tak aisa na ho.", "state"),
        ("Har hukumat insaaf ka waada karti hai aur mazloomon pe hi FIR kaat deti hai. Sharm ki baat hai.", "state"),
        ("Aaj police ne bus chaar dafa 'checking' ke liye roki. Mujrim jaisa sulook se thak gaya hoon.", "state"),
    ],
    "violence_words_sport": [
        "HEADSHOT!!! 🔥 poori lobby uda di",
        "Babar ne aaj bowlers ka qatl-e-aam kar diya, 50 gaindon pe century 🏏🔥",
        "Chemistry ke paper ne poori class ko shaheed kar diya 💀",
        "Final mein hamari team ki 6-0 se dhulai ho gayi. Zalim match tha.",
        "Ammi ne kitchen mein tabahi macha di, das minute mein saare bartan saaf 🧽",
        "Ye naya phone raat ki photography mein sab ko maar deta hai, koi muqabla nahi.",
    ],
    "profanity_no_group": [
        "Bakwas traffic, bhaar mein jaye ye sheher 🤬",
        "Lanat hai is garmi pe, qulfi ki tarah pighal raha hoon 😤",
        "Kambakht printer deadline se pehle phir phans gaya.",
        "Ye WiFi ko aaj kya museebat pari hai?!",
        "Bhaar mein jaye Monday. Sach mein.",
        "Kya bakwas din tha. Bus kharab, chhatri tooti, phone band. Wah.",
    ],
    "reclaimed_ingroup": [
        ("Hamari guru ji aaj 70 saal ki ho gayin, poora dera unke liye ikatha hua 🎂", "transgender"),
        ("Hum khawaja sira bhi isi mulk ke shehri hain, apne shanakhti card aur vote ke sath.", "transgender"),
        ("Shia hoon, saal bhar haleem khata hoon, koi afsos nahi 😂", "shia"),
        ("Pathan problems: har mehmaan dry fruit ka dabba le ke hi jata hai, chahe mane ya na mane 😂", "pashtun"),
        ("Asli Punjabi shaadi: chaar din, chhe sau mehmaan, aur ek bechara thaka hua DJ 😅", "punjabi"),
        ("Hum Hazara aur hamara ashak ka shauq, baat hi mat karo 🥟", "hazara"),
        ("Main aurat engineer hoon, sab se maza tab aata hai jab client ko pata chalta hai drawing maine sign ki hai.",
         "women"),
    ],
    "obfuscation_benign": [
        "PUBG mein aaj poora squad kh@tam, 3 kill 1 game mein 🔥",
        "is Ramzan mera j1had: Isha ke baad phone band 😅",
        "paper ko m a a r  d i y a aaj!!! 🎉",
        "uffff garmiiii se thak gaya hoonnnn 🥵",
        "selaab ke sh@heedon ke liye dua, kal relief camp mein volunteer karne ja raha hoon",
        "exam d3stroy kar diya, alhamdulillah 🙏",
    ],
    "code_mixed_neutral": [
        "Yaar exam kal hai aur maine abhi tak book open bhi nahi ki 😭",
        "Ammi ne biryani banayi hai, best Sunday ever.",
        "Shahrah-e-Faisal pe traffic aaj insane hai, bilkul move nahi ho raha.",
        "Match dekhne chalein? Tickets mil gaye hain bro.",
        "Shaadi season aa gaya hai aur mere paas ek bhi naya suit nahi.",
        "Office se nikla hi tha ke baarish start, obviously.",
    ],
    "peace_greeting": [
        "Sab ko Jumma Mubarak 🤍",
        "Eid pe sab ko aman aur mohabbat, har ghar roshan rahe.",
        "Pakistan ki salamati aur khushhali ke liye duaein 🇵🇰",
        "Hamare Hindu dosto aur parosiyon ko Diwali mubarak 🪔",
        "Aaj Christmas manane walon ko bohat mubarak 🎄",
        "Sab ko Vaisakhi ki mubarakbaad 🌾",
    ],
}

_VARIANTS = [
    (r"\bhai\b", ("he", "hy", "hai")), (r"\bhain\b", ("hen", "hn", "hain")), (r"\bnahi\b", ("nai", "nhi", "nahin")),
    (r"\bmein\b", ("me", "mai", "main")), (r"\bkya\b", ("kia",)), (r"\bkar\b", ("kr",)), (r"\bkaro\b", ("kro",)),
    (r"\bke\b", ("k", "ky")), (r"\braha\b", ("rha",)), (r"\bbohat\b", ("bht", "bohot")), (r"\bhoon\b", ("hun", "hn")),
    (r"\bkyun\b", ("kyu", "q")), (r"\bbhi\b", ("b",)), (r"\bsab\b", ("sb",)), (r"\bhota\b", ("hta",)),
]


def vary(text: str, rng) -> str:
    """Real Roman Urdu spelling variation: each listed word swapped for a variant with probability 0.6."""
    for pattern, options in _VARIANTS:
        if rng.random() < 0.6:
            choice = rng.choice(options)
            text = re.sub(pattern, choice, text)
    return text

# Second batch of hand-written cases: four more per functionality, so each cell has ten.
MORE = {
    "glorification": [
        "Kya raat thi mujahideen ki! Deen ke dushman hafton soyenge nahi 🔥🏴",
        "Wo bhai muskurate hue jannat mein chale gaye. Allah unke naam roshan rakhe 🌹",
        "Asli hero yehi hain, ummat ke liye sab kuch qurban kar diya jab hum cricket dekh rahe thay.",
        "Taghut ki chowki pe jo hua us pe dil khush ho gaya. Allah bhaiyon ko mazeed fatah de 🤲",
    ],
    "glorification_denied_label": [
        "Tum dehshat kaho, hum izzat kehte hain. Bhai ghazi hain, bas 🏴",
        "Wo mujrim nahi tha, shaheed tha, Allah uske darjaat buland kare 🌹",
        "'Militant' media ka lafz hai. Hamare liye ye Islam ke sher hain.",
        "Qatil nahi, ghazi hai jisne namoos ki hifazat ki. Main uska haath choomun 🤲",
    ],
    "recruitment_coded": [
        "Bhaiyon ko mukhlis naujawan chahiye. Dil mein pukaar mehsoos ho to pata hai kahan message karna hai 🏴",
        "Hijrat sanjeeda logon ka intezar kar rahi hai. Tafseel inbox mein, baat bahar na jaye.",
        "Zindagi ko maqsad dena hai? Qafle mein jagah hai. DM karo, sirf sanjeeda.",
        "Mukhlis logon ke liye bayat khuli hai. Private rabta karo, bhai rehnumai karenge 🤲",
    ],
    "counter_mocks_extremists": [
        "'Jannat pakki' kehta hai wo banda jo kabhi apne mehfooz ghar se bahar nahi nikla 😂",
        "'Ameer' ko qafle ke liye tumhara jawan beta chahiye. Apne bete ko scholarship dilwa di. Wah.",
        "Inki nayi video: udhaar ki jacket mein camera pe cheekhta hua banda. Bohat darawna 🙄",
        "Agar recruiter kahe 'ammi ko mat batana', samajh jao dhoka hai.",
    ],
    "counter_religious_rebuttal": [
        "Nabi ﷺ ne jang mein bhi aurton, bachon, rahibon ko maarne se mana kiya, darakht kaatne se bhi. Pehle parho.",
        "Khudkushi haram hai aur namaziyon ko maarna dugna jurm. Koi mautabar aalim iske ulat nahi kehta.",
        "Telegram pe 'murtad ko maaro' fiqh nahi hai. Faisla sirf adalat karti hai, aur Islam mein rehm pehle hai.",
        "Hamare ulama ne TTP ki jang ko khurooj kaha, Musalmanon ke khilaf baghawat. Yehi fatwa hai, 'jihad' nahi.",
    ],
    "counter_sarcasm": [
        "Haan bilkul, mazdooron ki bus mein dhamaka karke Allah khush hota hai. Kya mantiq hai 🙄",
        "Kya bahadur log hain, polio workers pe goli. Waqt ke hero 👏",
        "Church jala ke 'Islam ka difa'. Masterstroke.",
        "Ummat ke bachon ko yateem karke 'ummat ki hifazat'. Zabardast plan 🤡",
    ],
    "counter_code_mixed": [
        "Jo bhai 'ghazi' wali post share kar raha hai, he is glorifying a murderer. Report karo.",
        "Christian sanitary workers ko gaali dene walo, subah tumhari gali kaun saaf karta hai? Shame on you.",
        "Qafila, inbox, DM: ye recruiter ke words hain. Apne bachon ko explain karo.",
        "'Sab Pathan terrorist' bolne se pehle socho, TTP ke sab se bare victims Pashtun hi hain.",
    ],
    "survivor_voice": [
        "Mere shohar police constable thay. Unke qatilon ko mujahideen kaha gaya. Mere teen bache aaj bhi abbu pukarte hain.",
        "Dhamake ke waqt main hall mein thi. Sunne ki taqat wapis nahi aayi. Us din mein kuch muqaddas nahi tha.",
        "Jab hamara church jalaya gaya main nau saal ki thi. Ammi ka dhuen mein se Bible utha ke nikalna yaad hai.",
        "Mera bhai polio worker tha. Bachon ko qatre pilane pe goli maar di gayi. Ab mujhe 'jihad' samjhao.",
    ],
    "counter_negated_support": [
        "LeJ ya Hazara ko maarne wale kisi ka support nahi karta. Ise imaan kehna jhoot hai.",
        "'Bhaiyon' ke sath kabhi nahi. Inki jang ne hamare qabristan bhare hain, masjidein nahi.",
        "Ahmadiyon ko dhamki dene walon ke sath nahi khara hounga. Aqeede pe qatl asal gustakhi hai.",
        "BLA ho ya TTP, mera koi support nahi. Bandooq ne hamare naujawanon ko sirf janaze diye.",
    ],
    "news_attack": [
        "Dera Ismail Khan mein naamaloom hamla aawaron ki police gasht pe firing, teen ahalkar zakhmi: police",
        "Jummay ke khudkush dhamake mein jaan bahaq hone walon ki tadaad 14 ho gayi, hospital hukaam.",
        "Punjab mein CTD ki karwai, kaladam tanzeem se talluq ke shubhe mein paanch afraad giraftar.",
        "Karachi mein police mobile pe hamle ke baad ilaqe ki nakabandi kar di gayi.",
    ],
    "news_claim_reported": [
        "Audio paighaam mein tanzeem ke tarjuman ne hamla aawaron ko 'shaheed' kaha; daawe ki tasdeeq nahi ho saki.",
        "Monitoring group ke mutabiq ISKP ki news agency ne madrassa pe hamle ka daawa kiya.",
        "Hukaam ke mutabiq tanzeem ka 'darjanon fauji maarne' ka daawa ghalat hai; do fauji shaheed huay.",
        "Police afsar ke mutabiq TTP se alag hone wale dhade ne hamle ki zimmedari qubool ki hai.",
    ],
    "analysis": [
        "Purane recruits pe tehqeeq batati hai ke nazriye se zyada zaati shikayatein aur doston ka halqa asar karta hai.",
        "Propaganda ke encrypted apps pe jaane se takedown mushkil aur counter messaging zaroori ho gayi hai.",
        "Sarhad pe bahar lagne se dakhla kam hua, magar KP mein maqami bharti barhi hai, mahireen ka kehna hai.",
        "2015 ke baad firqa wariyat ke hamlon mein numaya kami aayi, naye data se pata chalta hai.",
    ],
    "religious_inner_jihad": [
        "Bachon pe ghussa qaboo karna: wo jihad jis ki koi post nahi karta 😅",
        "Shaikh ne yaad dilaya: mujahid wo hai jo Allah ke liye apne nafs se larta hai.",
        "Zalzale mein jaan dene wale ustad shaheed hain inshallah. Unke gharwalon ke liye dua karein.",
        "Is Ramzan cigarette chhor raha hoon. Dua karna, ye jihad asli hai 🚭",
    ],
    "religious_sermon_verse": [
        "Jummay ka khutba: 'Aye imaan walo, insaaf pe qaim raho chahe apne khilaf hi kyun na ho' (4:135).",
        "Aaj raat Najran ke Isaiyon ke naam Nabi ﷺ ke khat aur unki hifazat pe dars.",
        "Yaad dehani: Allah tumhein un logon se bhalai aur insaaf se nahi rokta jo tum se nahi larte (60:8).",
        "Masjid ke tafseer halqe ne aaj Surah Yusuf mukammal ki. Sabr aur maafi ka sabaq.",
    ],
    "spelling_variants_religious": [
        "Quran class: k-f-r ka maadda 'kaffara' mein bhi hai, yani kaffara ada karna. Zuban kamaal hai.",
        "Bete ne Islamiyat ke test mein 'kafer' likha aur aadhe number mil gaye 😂",
        "Murtad, murtadd, murtid: teen kitabon mein teen spellings. School ko ek style guide chahiye.",
        "Ghazwa, ghazva, ghazwah: is term seerat ki jangein parh rahe hain, pehle Badr.",
    ],
    "sarcasm_neutral": [
        "Sardiyon mein gas phir zero. Shukriya world class management 👏",
        "Lo ji, pichli committee ki tehqeeq ke liye nayi committee. Taraqqi!",
        "Zabardast, metro ka kiraya barh gaya aur AC ab bhi band. Paisa wasool.",
        "Breaking: hukumat ko pata chala ke barish mein sarkein doob jaati hain. Har saal. Hairat hai 🙃",
    ],
    "state_grievance": [
        ("FC ne VIP ke liye teen ghante sarak band rakhi aur ambulance khari rahi. Sharmnak.", "state"),
        ("Police hamari hifazat kare, har nake pe students ko tang na kare.", "state"),
        ("Operation mein gaon khali karwaya gaya aur gharon ka muawza aaj tak nahi mila. Intezar jari hai.", "state"),
        ("Adalatein dahaiyan leti hain, police rishwat. Jab tak ye nahi badlega pur aman ehtijaj jari rahega.", "state"),
    ],
    "violence_words_sport": [
        "Shaheen ka qatil yorker, stumps ura diye 🔥",
        "Debate final mein humne unka safaya kar diya 🏆",
        "Chess ka match qatl-e-aam tha, paanch chalon mein wazeer gaya 😭",
        "Sale pe aunties ne lawn ke racks pe fauj ki tarah hamla kiya ⚔️😂",
    ],
    "profanity_no_group": [
        "Lanat hai, khana pakate pakate phir gas khatam.",
        "Is bewaqoof laptop ne crash ho ke assignment bhi saath le li 😡",
        "Bhaar mein jaye, mere gate ke aage phir kis ne gaari khari ki",
        "Kya bakwas match tha, dono teamein so ke kheli.",
    ],
    "obfuscation_benign": [
        "sh00t yaar, charger phir ghar bhool aaya",
        "school team ki B1G J1T aaj 🏆🔥",
        "goooaaaal!!! kya shot tha 🔥⚽",
        "meri d i e t kal se pakki 🍕",
    ],
    "code_mixed_neutral": [
        "Chai break karein? Meeting se pehle need one, warna so jaunga.",
        "Shaadi zabardast thi, khana amazing, aur baraat sirf do ghante late 😂",
        "Saddar mein koi acha darzi pata hai? Friday tak suit chahiye.",
        "Barish wala din aur ammi ke aloo parathe, nothing beats it yaar.",
    ],
    "peace_greeting": [
        "Sab ke liye pur aman Muharram ki dua.",
        "Hamare Masihi behen bhaiyon ko Easter mubarak 🐣",
        "Hamari family ki taraf se aap sab ko Eid mubarak 🌙",
        "Navroz manane walon ko mubarakbaad 🌸",
    ],
}
for _func, _cases in MORE.items():
    HAND[_func] = HAND[_func] + _cases

# Slurs: only the masked forms GUIDELINES §4.6.2 and §6 rule 5 use, where the slur is the point of the case.
HAND["slur_masked"] = [
    ("R@fzi sahaba ke dushman hain. Inke sath na utho baitho, na rishta karo.", "shia"),
    ("Mohalle se har R@fzi ko nikalo, ye is zameen pe lanat hain.", "shia"),
    ("Q@diani ghaddar aur jhoote hain. Inki har dukaan ka boycott karo.", "ahmadi"),
    ("Q@diyaniyon ke sath khana mat khao. Gand hain sab ke sab.", "ahmadi"),
    ("Signal pe phir kh*sre. Ghatiya makhlooq, bachon ko inse door rakho.", "transgender"),
    ("Ye kh*sre samaj pe lanat hain, aur kuch nahi.", "transgender"),
    ("Ch**re sirf gutter saaf karne ke qabil hain, isi liye paida huay hain.", "christian"),
    ("Ch**re ke glass mein kabhi pani mat peena, paidaishi gande hote hain.", "christian"),
]
HAND["counter_slur_quoted"] = [
    ("Masjid ke WhatsApp group mein kisi ne hamare parosiyon ko 'R@fzi' likha. Abbu ke inteqal pe sab se pehle wohi "
     "aaye thay. Ye lafz nafrat hai, deen nahi.", "shia"),
    ("Imambargah ki deewar pe phir 'R@fzi' likha tha. Sunni Shia ne mil ke rang kar diya. Koshish jari rakho.", "shia"),
    ("'Q@diani wapis jao'? Ye unka hi ghar hai. Shutter pe nafrat likhna imaan nahi.", "ahmadi"),
    ("Class fellow ne aaj 'Q@diani' gaali ke taur pe bola. Maine poocha kisi ek Ahmadi ko jaante ho? Nahi jaanta tha.",
     "ahmadi"),
    ("Ek bache ne meri khala ko 'kh*sra' kaha. Unka naam Nayab hai, parlour chalati hain, aur wo lafz gaali hai.",
     "transgender"),
    ("'Kh*sra' mazaq ka lafz nahi. Is mulk mein trans log isi lafz pe maar khate hain. Band karo.", "transgender"),
    ("Safai karne walon ko 'ch**ra' kehna band karo. Hum sote hain wo sarkein saaf karte hain. Gand lafz mein hai, "
     "un mein nahi.", "christian"),
    ("Dadi ne saari umar 'ch**ri' suna. Aaj unka pota doctor hai. Us lafz ne hamari pehchan kabhi tay nahi ki.",
     "christian"),
]
