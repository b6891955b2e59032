//! Words as search sees them, in every script the studio writes in.
//!
//! - Text is split at Unicode word boundaries (UAX #29, ICU4X's segmenter).
//!   Scripts written without spaces between words (Thai, Lao, Khmer,
//!   Burmese) are split by ICU's dictionaries. Line breaks, punctuation and
//!   spaces always separate words: nothing is glued across them.
//! - Chinese, Japanese and Korean runs become overlapping character pairs
//!   (`東京タワー` → `東京 京タ タワ ワー`), as Lucene's CJK analyzer does: a
//!   query and a document then agree on their terms without a dictionary
//!   having to agree on where their words end. A lone character stays a term.
//! - Latin letters are lowercased and their accents folded (`Café` →
//!   `cafe`, `Straße` → `strasse`); nothing is transliterated, so a kanji
//!   stays itself and two unrelated characters never meet.
//! - English stop words are dropped and Latin words are Snowball-stemmed.
//!
//! The lexical index, the local embedder, chunk sizing and snippets all use
//! this module, so a query and a document always agree on what a word is.

use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_segmenter::WordSegmenter;
use icu_segmenter::options::WordBreakInvariantOptions;
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashSet;
use std::ops::Range;
use std::sync::OnceLock;

/// A Latin-script language: its stop words and its Snowball stemmer.
struct Latin {
    code: &'static str,
    /// As listed and with accents folded (`für` and `fur`).
    stop: HashSet<String>,
    stemmer: Stemmer,
}

/// The Latin-script languages told apart, English first (the default).
fn latin_languages() -> &'static [Latin] {
    static LANGS: OnceLock<Vec<Latin>> = OnceLock::new();
    LANGS.get_or_init(|| {
        use stop_words::LANGUAGE as L;
        [
            ("en", L::English, Algorithm::English),
            ("es", L::Spanish, Algorithm::Spanish),
            ("de", L::German, Algorithm::German),
            ("fr", L::French, Algorithm::French),
            ("pt", L::Portuguese, Algorithm::Portuguese),
            ("it", L::Italian, Algorithm::Italian),
            ("nl", L::Dutch, Algorithm::Dutch),
        ]
        .into_iter()
        .map(|(code, list, algorithm)| Latin {
            code,
            stop: stop_words::get(list)
                .iter()
                .flat_map(|w| [w.to_string(), fold_accents(w)])
                .collect(),
            stemmer: Stemmer::create(algorithm),
        })
        .collect()
    })
}

/// The Latin language with this code (English when unknown).
fn latin(code: Option<&str>) -> &'static Latin {
    let langs = latin_languages();
    code.and_then(|c| langs.iter().find(|l| l.code == c))
        .unwrap_or(&langs[0])
}

/// Japanese particles and Chinese function characters: a query pair holding
/// one says little about what the query is about.
const CJK_FUNCTION_CHARS: &str = "のはがをにでともやかへよねなだ的了吗呢吧啊么";
/// Chinese question words.
const CJK_QUESTION_PAIRS: &[&str] = &[
    "什么", "怎么", "如何", "哪些", "哪个", "是否", "多少", "可以", "需要", "应该", "为什", "怎样",
    "です", "ます",
];

/// How a character takes part in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Han, Hiragana, Katakana, Hangul: indexed as character pairs.
    Cjk,
    /// Thai, Lao, Khmer, Burmese: words found by dictionary, no spaces.
    Dense,
    /// Everything else.
    Other,
}

/// The script class of a character.
pub fn script(c: char) -> Script {
    match c as u32 {
        0x3040..=0x30FF // Hiragana, Katakana
        | 0x31F0..=0x31FF // Katakana phonetic extensions
        | 0x3005..=0x3007 // 々 〆 〇
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF66..=0xFF9F // half-width Katakana
        | 0x1100..=0x11FF // Hangul Jamo
        | 0x3130..=0x318F // Hangul compatibility Jamo
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0x20000..=0x3134F // CJK extensions B-H
        => Script::Cjk,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        => Script::Dense,
        _ => Script::Other,
    }
}

/// The language a short text is most likely in, when it can be told: from
/// its script (Japanese, Chinese, Korean, Thai), or for Latin script from
/// the stop words it holds (English, Spanish, German, French, Portuguese,
/// Italian, Dutch). `None` when nothing tells (a lone Latin word).
pub fn language(text: &str) -> Option<&'static str> {
    let (mut kana, mut han, mut hangul, mut dense) = (0, 0, 0, 0);
    for c in text.chars() {
        match c as u32 {
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => kana += 1,
            0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => hangul += 1,
            _ if script(c) == Script::Cjk => han += 1,
            0x0E00..=0x0E7F => dense += 1,
            _ => {}
        }
    }
    if kana > 0 {
        return Some("ja");
    }
    if hangul > 0 {
        return Some("ko");
    }
    if han > 0 {
        return Some("zh");
    }
    if dense > 0 {
        return Some("th");
    }
    let words: Vec<String> = word_ranges(text)
        .into_iter()
        .map(|r| text[r].to_lowercase())
        .collect();
    let mut counts: Vec<(&'static str, usize)> = latin_languages()
        .iter()
        .map(|lang| {
            let n = words
                .iter()
                .filter(|w| lang.stop.contains(w.as_str()))
                .count();
            (lang.code, n)
        })
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.as_slice() {
        // A tie (`in` is English, German and Dutch) tells nothing.
        [(code, n), (_, second), ..] if *n > 0 && n > second => Some(code),
        _ => None,
    }
}

/// The terms of a document's text, in order: stop words of English and of
/// the text's own language dropped, Latin words stemmed in that language.
pub fn terms(text: &str) -> Vec<String> {
    terms_in_language(text).1
}

/// A text's language (as [`language`] tells it) and its terms (as
/// [`terms`]), the text read for its language once.
pub fn terms_in_language(text: &str) -> (Option<&'static str>, Vec<String>) {
    let lang = language(text);
    let terms = spans(text, lang).into_iter().map(|(t, _)| t).collect();
    (lang, terms)
}

/// Names of languages, of their scripts, of the countries that write them,
/// of their largest cities (where a studio's offices and partners are) and
/// of the social and shopping platforms that serve one market alone
/// (WeChat, Douyin, Rakuten, Kakao), in English and in the language itself
/// (Latin names compared without accents or case). A platform whose name
/// is also a common word ("LINE") is left out.
const NAMED_LANGUAGES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "english", "英語", "英语", "영어", "ingles", "englisch", "anglais",
        ],
    ),
    (
        "ja",
        &[
            "japan",
            "japanese",
            "日本",
            "japon",
            "japones",
            "japanisch",
            "japonais",
            "kanji",
            "kana",
            "katakana",
            "hiragana",
            "furigana",
            "tokyo",
            "osaka",
            "kyoto",
            "東京",
            "大阪",
            "yokohama",
            "nagoya",
            "fukuoka",
            "sapporo",
            "kobe",
            "rakuten",
            "mercari",
            "niconico",
        ],
    ),
    (
        "zh",
        &[
            "china",
            "chinese",
            "mandarin",
            "中国",
            "中文",
            "汉语",
            "漢語",
            "华语",
            "中國",
            "chino",
            "chinesisch",
            "chinois",
            "hanzi",
            "pinyin",
            "beijing",
            "shanghai",
            "shenzhen",
            "guangzhou",
            "北京",
            "上海",
            "深圳",
            "广州",
            "taiwan",
            "taipei",
            "macau",
            "macao",
            "hangzhou",
            "chengdu",
            "chongqing",
            "wuhan",
            "tianjin",
            "wechat",
            "weixin",
            "weibo",
            "douyin",
            "xiaohongshu",
            "rednote",
            "bilibili",
            "kuaishou",
            "taobao",
            "tmall",
            "alipay",
            "微信",
            "微博",
            "抖音",
            "小红书",
            "快手",
            "淘宝",
            "天猫",
        ],
    ),
    (
        "ko",
        &[
            "korea",
            "korean",
            "한국",
            "韓国",
            "韩国",
            "coreano",
            "koreanisch",
            "coreen",
            "hangul",
            "seoul",
            "서울",
            "busan",
            "incheon",
            "kakao",
            "kakaotalk",
            "naver",
        ],
    ),
    (
        "th",
        &[
            "thailand",
            "thai",
            "ไทย",
            "tailandia",
            "tailandes",
            "bangkok",
        ],
    ),
    (
        "es",
        &[
            "spain",
            "spanish",
            "espana",
            "espanol",
            "spanien",
            "spanisch",
            "espagnol",
            "madrid",
            "barcelona",
            "valencia",
            "sevilla",
            "seville",
            "bilbao",
            "malaga",
            "zaragoza",
            "latinoamerica",
            "latam",
            "mexico",
            "argentina",
            "colombia",
            "chile",
            "peru",
        ],
    ),
    (
        "de",
        &[
            "germany",
            "german",
            "deutschland",
            "deutsch",
            "deutsche",
            "deutschen",
            "aleman",
            "alemania",
            "allemand",
            "berlin",
            "munich",
            "munchen",
            "hamburg",
            "frankfurt",
            "cologne",
            "koln",
            "stuttgart",
            "dusseldorf",
            "leipzig",
            "dresden",
            "austria",
            "austrian",
            "osterreich",
            "osterreichisch",
            "vienna",
            "wien",
            "zurich",
        ],
    ),
    (
        "fr",
        &[
            "france",
            "french",
            "francais",
            "francaise",
            "frankreich",
            "franzosisch",
            "frances",
            "francia",
            "paris",
            "lyon",
            "marseille",
        ],
    ),
    (
        "pt",
        &[
            "portugal",
            "portuguese",
            "portugues",
            "portuguesa",
            "brazil",
            "brasil",
            "brazilian",
            "brasileiro",
            "lisbon",
            "lisboa",
        ],
    ),
    (
        "it",
        &[
            "italy",
            "italian",
            "italia",
            "italiano",
            "italiana",
            "italien",
            "italienisch",
            "rome",
            "roma",
            "milan",
            "milano",
        ],
    ),
    (
        "nl",
        &[
            "netherlands",
            "dutch",
            "nederland",
            "nederlands",
            "holland",
            "niederlande",
            "niederlandisch",
            "amsterdam",
            "rotterdam",
        ],
    ),
];

/// The languages a text names, by their own name or their country's
/// ("Japanese", "Spain", "日本", "Deutschland"), in the order of
/// [`NAMED_LANGUAGES`]: a query about "the Japanese guidelines" asks for
/// what is written in Japanese.
pub fn named_languages(text: &str) -> Vec<&'static str> {
    let words: Vec<String> = word_ranges(text)
        .into_iter()
        .map(|r| fold_accents(&compatible(&text[r]).to_lowercase()))
        .collect();
    NAMED_LANGUAGES
        .iter()
        .filter(|(_, names)| {
            names.iter().any(|name| {
                if name.chars().all(is_latin_letter) {
                    words.iter().any(|w| w == name)
                } else {
                    text.contains(name)
                }
            })
        })
        .map(|(code, _)| *code)
        .collect()
}

/// The terms of a query. As [`terms`], and: when the query's language
/// cannot be told (a lone word), each Latin word brings its stem in every
/// language told apart, so it meets a document in any of them; pairs of
/// CJK characters made of particles or question words are left out unless
/// nothing else is left.
pub fn query_terms(text: &str) -> Vec<String> {
    let lang = language(text);
    let mut out: Vec<String> = Vec::new();
    let mut function_pairs: Vec<String> = Vec::new();
    for (term, range) in spans(text, lang) {
        let word = &text[range];
        if term.chars().all(|c| script(c) == Script::Cjk) {
            let function = CJK_QUESTION_PAIRS.contains(&term.as_str())
                || term.chars().any(|c| CJK_FUNCTION_CHARS.contains(c));
            if function {
                function_pairs.push(term);
            } else {
                out.push(term);
            }
            continue;
        }
        out.push(term);
        if lang.is_none() && word.chars().all(is_latin_letter) {
            let folded = fold_accents(&compatible(word).to_lowercase());
            for other in &latin_languages()[1..] {
                let stem = other.stemmer.stem(&folded).into_owned();
                if !out.contains(&stem) {
                    out.push(stem);
                }
            }
        }
    }
    if out.is_empty() {
        return function_pairs;
    }
    out
}

/// Each term with the byte range of `text` it came from, in order.
pub fn term_spans(text: &str) -> Vec<(String, Range<usize>)> {
    spans(text, language(text))
}

fn spans(text: &str, lang: Option<&str>) -> Vec<(String, Range<usize>)> {
    let lang = latin(lang);
    let mut out = Vec::new();
    let mut cjk = CjkRun::default();
    for range in word_ranges(text) {
        let word = &text[range.clone()];
        if word.chars().all(|c| script(c) == Script::Cjk) {
            cjk.push(range, word, &mut out);
            continue;
        }
        cjk.flush(&mut out);
        if word.chars().any(|c| script(c) == Script::Cjk) {
            // Mixed (a Latin letter inside a CJK segment): each part on its own.
            let mut start = range.start;
            let mut last: Option<bool> = None;
            for (i, c) in word.char_indices() {
                let is_cjk = script(c) == Script::Cjk;
                if last.is_some_and(|l| l != is_cjk) {
                    let part = start..range.start + i;
                    emit_part(text, part, lang, &mut cjk, &mut out);
                    start = range.start + i;
                }
                last = Some(is_cjk);
            }
            emit_part(text, start..range.end, lang, &mut cjk, &mut out);
            cjk.flush(&mut out);
            continue;
        }
        if let Some(term) = normalise(word, lang) {
            out.push((term, range));
        }
    }
    cjk.flush(&mut out);
    out
}

fn emit_part(
    text: &str,
    part: Range<usize>,
    lang: &Latin,
    cjk: &mut CjkRun,
    out: &mut Vec<(String, Range<usize>)>,
) {
    let word = &text[part.clone()];
    if word.chars().all(|c| script(c) == Script::Cjk) {
        cjk.push(part, word, out);
    } else {
        cjk.flush(out);
        if let Some(term) = normalise(word, lang) {
            out.push((term, part));
        }
    }
}

/// The byte ranges of the word-like segments of `text` (letters and
/// numbers; spaces and punctuation left out).
pub fn word_ranges(text: &str) -> Vec<Range<usize>> {
    static SEGMENTER: OnceLock<icu_segmenter::WordSegmenterBorrowed<'static>> = OnceLock::new();
    let segmenter = *SEGMENTER
        .get_or_init(|| WordSegmenter::new_dictionary(WordBreakInvariantOptions::default()));
    let mut out = Vec::new();
    let mut start = 0;
    for (end, kind) in segmenter.segment_str(text).iter_with_word_type() {
        if end > start && kind.is_word_like() {
            out.push(start..end);
        }
        start = end;
    }
    out
}

/// Adjacent CJK characters, turned into overlapping pairs.
#[derive(Default)]
struct CjkRun {
    chars: Vec<(char, Range<usize>)>,
}

impl CjkRun {
    fn push(&mut self, range: Range<usize>, word: &str, out: &mut Vec<(String, Range<usize>)>) {
        // Only touching segments continue a run.
        if self.chars.last().is_some_and(|(_, r)| r.end != range.start) {
            self.flush(out);
        }
        let word = compatible(word);
        if matches!(word, std::borrow::Cow::Borrowed(_)) {
            // Unchanged (the usual case): each character keeps its own place.
            for (i, c) in word.char_indices() {
                let at = range.start + i;
                self.chars.push((c, at..at + c.len_utf8()));
            }
        } else {
            for c in word.chars() {
                self.chars.push((c, range.clone()));
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<(String, Range<usize>)>) {
        match self.chars.as_slice() {
            [] => {}
            [(c, r)] => out.push((c.to_string(), r.clone())),
            chars => {
                for pair in chars.windows(2) {
                    let mut term = String::with_capacity(8);
                    term.push(pair[0].0);
                    term.push(pair[1].0);
                    out.push((term, pair[0].1.start..pair[1].1.end));
                }
            }
        }
        self.chars.clear();
    }
}

/// Compatibility forms as their ordinary letters (NFKC): half-width
/// Katakana, full-width Latin, ligatures.
fn compatible(word: &str) -> std::borrow::Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfkc().normalize(word)
}

/// A non-CJK word as a term: lowercased, accents folded on Latin letters,
/// stop words (English and `lang`'s) dropped, Latin words stemmed in `lang`.
fn normalise(word: &str, lang: &Latin) -> Option<String> {
    let lower = compatible(word).to_lowercase();
    let latin = lower.chars().all(is_latin);
    let folded = if latin { fold_accents(&lower) } else { lower };
    let english = &latin_languages()[0];
    if folded.is_empty()
        || english.stop.contains(folded.as_str())
        || lang.stop.contains(folded.as_str())
    {
        return None;
    }
    if latin && folded.chars().any(|c| c.is_ascii_alphabetic()) {
        return Some(lang.stemmer.stem(&folded).into_owned());
    }
    Some(folded)
}

fn is_latin(c: char) -> bool {
    matches!(c as u32, 0..=0x024F | 0x1E00..=0x1EFF) || (0x0300..=0x036F).contains(&(c as u32))
}

fn is_latin_letter(c: char) -> bool {
    is_latin(c) && c.is_alphabetic()
}

/// `é` → `e`, `ß` → `ss`: diacritics go, letters stay Latin letters.
fn fold_accents(word: &str) -> String {
    if word.is_ascii() {
        return word.to_owned();
    }
    let nfd = DecomposingNormalizerBorrowed::new_nfd().normalize(word);
    let mut out = String::with_capacity(nfd.len());
    for c in nfd.chars() {
        match c {
            '\u{0300}'..='\u{036F}' => {}
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ø' => out.push('o'),
            'đ' => out.push('d'),
            'ł' => out.push('l'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            c => out.push(c),
        }
    }
    out
}

/// A stable 64-bit hash (FNV-1a) of a term or feature: the same on every
/// machine and every build, so stored indexes stay valid.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_named_by_language_or_country_in_any_script() {
        assert_eq!(named_languages("Japanese copy rules on honorifics"), ["ja"]);
        assert_eq!(named_languages("files for German deliveries"), ["de"]);
        assert_eq!(named_languages("summer colour in Spain"), ["es"]);
        assert_eq!(named_languages("日本の店舗向けのルール"), ["ja"]);
        assert_eq!(named_languages("Guía de marca en España"), ["es"]);
        assert_eq!(
            named_languages("Chinese fonts, not Japanese ones"),
            ["ja", "zh"]
        );
        assert_eq!(
            named_languages("revision rounds with the Shanghai partner"),
            ["zh"]
        );
        assert_eq!(named_languages("the Madrid office in August"), ["es"]);
        assert_eq!(named_languages("東京の店舗"), ["ja"]);
        assert_eq!(named_languages("katakana loanwords"), ["ja"]);
        // A platform of one market names its language; a common word that
        // is also a platform's name does not.
        assert_eq!(named_languages("WeChat posting times"), ["zh"]);
        assert_eq!(named_languages("a Rakuten shop banner"), ["ja"]);
        assert_eq!(named_languages("print run for Österreich"), ["de"]);
        assert!(named_languages("one line of copy").is_empty());
        // Only whole words: "germane" and "espanolitos" are not names.
        assert!(named_languages("a germane point about espanolitos").is_empty());
        assert!(named_languages("how many LINE messages per month").is_empty());
        assert!(named_languages("").is_empty());
    }

    #[test]
    fn terms_in_language_tells_the_language_it_stems_in() {
        let (lang, t) = terms_in_language("Die Farben der Marke und die Schrift");
        assert_eq!(lang, Some("de"));
        assert_eq!(t, terms("Die Farben der Marke und die Schrift"));
        assert_eq!(terms_in_language("店頭POPの作り方").0, Some("ja"));
        assert_eq!(terms_in_language("hello").0, None);
    }

    #[test]
    fn stop_words_go_and_inflections_meet() {
        let t = terms("The Colours of the running shoes");
        assert!(!t.iter().any(|w| w == "the" || w == "of"), "{t:?}");
        assert_eq!(terms("running"), terms("runs"));
        assert_eq!(terms("Café"), terms("cafe"));
        assert_eq!(terms("Straße"), terms("strasse"));
    }

    #[test]
    fn line_breaks_and_punctuation_never_glue_words() {
        // A non-ASCII heading path in front used to glue across the break.
        let t = terms("Marca › Newsletter\nNewsletters go out on Tuesdays,\nwrapped by hand");
        for w in ["newslett", "tuesday", "wrap", "hand", "marca"] {
            assert!(t.iter().any(|x| x == w), "{w} in {t:?}");
        }
        assert!(
            !t.iter().any(|x| x.contains("newsletternewsletter")),
            "{t:?}"
        );
        assert_eq!(terms("principles—We"), vec!["principl".to_owned()]);
    }

    #[test]
    fn kanji_are_not_transliterated_and_do_not_collide() {
        // Both read `quan` in pinyin.
        assert_ne!(terms("全"), terms("権"));
        assert_eq!(terms("全"), vec!["全".to_owned()]);
        let t = terms("東京タワー");
        assert_eq!(t, vec!["東京", "京タ", "タワ", "ワー"]);
    }

    #[test]
    fn a_katakana_word_with_particles_still_shares_its_pairs() {
        let query: HashSet<String> = terms("パレット").into_iter().collect();
        let doc: HashSet<String> = terms("ブランドのパレットは三色です。")
            .into_iter()
            .collect();
        assert!(!query.is_empty());
        assert!(query.is_subset(&doc), "{query:?} in {doc:?}");
        // Punctuation ends a run: no pair spans `。`.
        let t = terms("です。次");
        assert!(!t.iter().any(|x| x.contains('。')), "{t:?}");
        assert_eq!(t, vec!["です", "次"]);
    }

    #[test]
    fn chinese_and_korean_are_paired_too() {
        assert_eq!(terms("品牌色彩"), vec!["品牌", "牌色", "色彩"]);
        let t = terms("로고는 여백");
        assert_eq!(t, vec!["로고", "고는", "여백"]);
    }

    #[test]
    fn half_width_katakana_meets_full_width() {
        assert_eq!(terms("ﾃﾞｻﾞｲﾝ"), terms("デザイン"));
        assert_eq!(terms("ﾊﾟﾚｯﾄ"), terms("パレット"));
        assert_eq!(terms("ＬＯＧＯ"), terms("logo"));
    }

    #[test]
    fn thai_is_split_into_its_words() {
        // "every two weeks": ทุก / สอง / สัปดาห์
        let t = terms("ทุกสองสัปดาห์");
        assert_eq!(t, vec!["ทุก", "สอง", "สัปดาห์"]);
        // Thai vowel marks are letters, not accents to fold.
        assert!(terms("สี").iter().any(|x| x == "สี"));
    }

    #[test]
    fn mixed_latin_and_cjk_split_between_scripts() {
        let t = terms("iPhoneの画面");
        assert_eq!(t[0], "iphon");
        assert!(t.iter().any(|x| x == "画面"), "{t:?}");
        let spans = term_spans("Logo ロゴ");
        assert_eq!(spans[0].1, 0..4);
        assert_eq!(spans[1].0, "ロゴ");
        assert_eq!(&"Logo ロゴ"[spans[1].1.clone()], "ロゴ");
    }

    #[test]
    fn spanish_and_german_keep_their_words() {
        let t = terms("Diseño de la paleta: Schriftgröße und Farbwelt");
        for w in ["diseno", "paleta", "schriftgrosse", "farbwelt"] {
            assert!(
                t.iter().any(|x| x.starts_with(&w[..w.len() - 1])),
                "{w} in {t:?}"
            );
        }
    }

    #[test]
    fn languages_are_told_by_script_and_stop_words() {
        assert_eq!(language("ブランドのパレット"), Some("ja"));
        assert_eq!(language("品牌色彩的使用"), Some("zh"));
        assert_eq!(language("로고는 여백"), Some("ko"));
        assert_eq!(language("ทุกสองสัปดาห์"), Some("th"));
        assert_eq!(language("what is the logo clear space"), Some("en"));
        assert_eq!(language("cuál es el tamaño de la letra"), Some("es"));
        assert_eq!(
            language("wie groß ist die Schrift auf dem Plakat"),
            Some("de")
        );
        assert_eq!(language("Druckfreigabe"), None);
        assert_eq!(language("Eszett in Versalien"), None);
    }

    #[test]
    fn stable_hash_is_fixed() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(stable_hash(b"logo"), stable_hash(b"log"));
    }
}
