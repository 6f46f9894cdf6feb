"""IFEval checker cases: (instruction id, kwargs as in input_data.jsonl, response, followed under strict scoring).

Every one of the 25 registry ids has at least one followed and one not-followed case; the tricky ones also pin the
reference's quirks (regex keywords, substring counting, `**bold**` counted twice, raw paragraph indexing, ...).
Expected values were cross-checked against the reference implementation.
"""

LOREM = (
    "The river runs past the old mill. Children play on its banks every summer. "
    "In the evening the water turns gold and quiet."
)

CHECKER_CASES = [
    # keywords:existence: each keyword is an unescaped, case-insensitive regex found anywhere
    ("keywords:existence", {"keywords": ["mom", "mother"]}, "My Mom is a great mother.", True),
    ("keywords:existence", {"keywords": ["mom", "mother"]}, "My mum is great.", False),
    ("keywords:existence", {"keywords": ["cat"]}, "A category of things.", True),  # substring counts
    # keywords:frequency: substring regex matches, "less than" is <, "at least" is >=
    ("keywords:frequency", {"keyword": "story", "frequency": 2, "relation": "at least"}, "A story. STORY!", True),
    ("keywords:frequency", {"keyword": "story", "frequency": 2, "relation": "at least"}, "One story only.", False),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "less than"}, "cat category", False),
    ("keywords:frequency", {"keyword": " cat ", "frequency": 2, "relation": "less than"}, "one cat", True),
    # keywords:forbidden_words: whole words only
    ("keywords:forbidden_words", {"forbidden_words": ["field", "issue"]}, "Fields of issues.", True),
    ("keywords:forbidden_words", {"forbidden_words": ["field", "issue"]}, "The Issue was fixed.", False),
    # keywords:letter_frequency: counts the lowercased letter over the whole response
    ("keywords:letter_frequency", {"letter": "t", "let_frequency": 2, "let_relation": "less than"}, "Tea.", True),
    ("keywords:letter_frequency", {"letter": "t", "let_frequency": 2, "let_relation": "less than"}, "Tt", False),
    ("keywords:letter_frequency", {"letter": "Q", "let_frequency": 3, "let_relation": "at least"}, "qQq", True),
    ("keywords:letter_frequency", {"letter": "q", "let_frequency": 3, "let_relation": "at least"}, "qq", False),
    # language:response_language: langdetect's code must equal the requested one
    ("language:response_language", {"language": "fr"}, "Le chat est sur la table et il dort tranquillement.", True),
    ("language:response_language", {"language": "fr"}, "The cat is on the table and sleeps quietly.", False),
    ("language:response_language", {"language": "fr"}, "12345 67890", True),  # nothing to detect: followed
    # length_constraints:number_sentences: nltk Punkt sentences ("Mr." and "D.C." do not end one)
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"},
     "Mr. Smith went to Washington D.C. on Friday.", True),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"}, "One. Two.", False),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"}, LOREM, True),
    ("length_constraints:number_sentences", {"num_sentences": 4, "relation": "at least"}, LOREM, False),
    # length_constraints:number_paragraphs: *** dividers, empty pieces only allowed at the ends
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First.\n***\nSecond.\n***", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First.\n***\n***\nSecond.", False),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 3}, "First.\n***\nSecond.", False),
    # length_constraints:number_words: \w+ runs ("don't" is two words)
    ("length_constraints:number_words", {"num_words": 4, "relation": "at least"}, "I don't know.", True),
    ("length_constraints:number_words", {"num_words": 4, "relation": "less than"}, "I don't know.", False),
    # length_constraints:nth_paragraph_first_word: \n\n paragraphs, first word stripped of quotes and punctuation
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Summer"},
     "Winter is cold.\n\n\"Summer, however, is warm.", True),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "summer"},
     "Winter is cold.\n\nSummer is warm.", False),  # only 2 paragraphs
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "summer"},
     "Winter is cold.\n\nSummers are warm.", False),
    # reference quirk: the nth paragraph is taken from the raw split, empty pieces included
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "summer"},
     "Winter.\n\n\n\nSummer.", False),
    # detectable_content:number_placeholders
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], at [address].", True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name].", False),
    # detectable_content:postscript: P.S. / P.P.S get their own patterns, anywhere at a line start
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\n\np.s. see you", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\n\nPS see you", False),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP. P. S more", True),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP.S. more", False),
    # detectable_format:number_bullet_lists: exactly n lines starting with "* " or "-"
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "Intro\n* one\n- two\n**bold** line", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two\n* three", False),
    # detectable_format:constrained_response
    ("detectable_format:constrained_response", {}, "Well. My answer is maybe.", True),
    ("detectable_format:constrained_response", {}, "My answer is yes", False),  # no period
    # detectable_format:number_highlighted_sections: non-blank *x* spans plus non-blank **x** spans
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and *two*", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "**bold** and *one*", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "**bold**", False),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and * *", False),
    # detectable_format:multiple_sections: splitter + number
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
     "SECTION 1\nfoo\nSECTION 2\nbar", True),
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
     "SECTION I\nfoo\nSECTION II\nbar", False),  # roman numerals do not count
    # detectable_format:json_format: optional ``` / ```json fence
    ("detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', True),
    ("detectable_format:json_format", {}, 'Here: {"a": 1}', False),
    # detectable_format:title
    ("detectable_format:title", {}, "<<Poem of Joy>>\nLa la.", True),
    ("detectable_format:title", {}, "<< >> untitled", False),
    # combination:two_responses
    ("combination:two_responses", {}, "Answer one.\n******\nAnswer two.", True),
    ("combination:two_responses", {}, "Same.\n******\nSame.", False),
    ("combination:two_responses", {}, "One.\n******\n******\nTwo.", False),
    # combination:repeat_prompt: case-insensitive prefix
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a haiku."}, "write a HAIKU. Snow falls.", True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a haiku."}, "Sure! Write a haiku.", False),
    # startend:end_checker: trailing quotes and case ignored
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, 'Done. "any other questions?"', True),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Any other questions? Bye.", False),
    # startend:quotation
    ("startend:quotation", {}, '  "Wrapped."  ', True),
    ("startend:quotation", {}, '"', False),
    # change_case:capital_word_frequency: nltk.word_tokenize tokens that are .isupper()
    ("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "at least"},
     "NASA and the FBI met the CEO.", True),
    ("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "less than"},
     "NASA and the FBI met the CEO.", False),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "I can't, I won't.", False),  # the two "I" tokens; "n't" is its own token
    # change_case:english_capital / english_lowercase: case test and langdetect "en"
    ("change_case:english_capital", {}, "THIS RESPONSE IS WRITTEN IN CAPITAL LETTERS ONLY.", True),
    ("change_case:english_capital", {}, "THIS RESPONSE IS mostly IN CAPITAL LETTERS.", False),
    ("change_case:english_capital", {}, "ЭТО ПРЕДЛОЖЕНИЕ НАПИСАНО НА РУССКОМ ЯЗЫКЕ.", False),  # not "en"
    ("change_case:english_lowercase", {}, "this response is written in lowercase letters only.", True),
    ("change_case:english_lowercase", {}, "this response is written in Lowercase letters.", False),
    # punctuation:no_comma
    ("punctuation:no_comma", {}, "No commas here.", True),
    ("punctuation:no_comma", {}, "One, two.", False),
]
