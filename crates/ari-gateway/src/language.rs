//! Where a leg's language comes from: dialplan channel variables, the deployment's defaults,
//! and the caller's DTMF menu.

use dragoman_bus::control::LegLanguage;
use dragoman_runtime::config::{AriConfig, dtmf_menu_entry};

/// A leg's language as the dialplan set it: `DRAGOMAN_LANGUAGE` and `DRAGOMAN_TARGETS` (names
/// from config), each absent when the variable is unset or empty.
pub fn from_variables(language: Option<&str>, targets: Option<&str>) -> LegLanguage {
    let language = language.map(str::trim).filter(|value| !value.is_empty()).map(str::to_owned);
    let targets = targets.map(list).unwrap_or_default();
    LegLanguage { language, targets }
}

/// A comma-separated list, trimmed, empties dropped.
pub fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// Fills what the dialplan left out: the default language, and as targets the default
/// targets or else the other party's language (when that differs from this leg's).
pub fn complete(mut leg: LegLanguage, other: Option<&str>, config: &AriConfig) -> LegLanguage {
    if leg.language.is_none() {
        leg.language.clone_from(&config.default_language);
    }
    if leg.targets.is_empty() {
        leg.targets = if !config.default_targets.is_empty() {
            config.default_targets.clone()
        } else {
            other.filter(|other| Some(*other) != leg.language.as_deref()).map(|o| vec![o.to_owned()]).unwrap_or_default()
        };
    }
    leg
}

/// The caller's language menu (`ari.dtmf_menu`): keys pressed in sequence choose a language.
#[derive(Debug, Clone, Default)]
pub struct DtmfMenu {
    entries: Vec<(String, String)>,
}

impl DtmfMenu {
    pub fn new(entries: &[String]) -> Self {
        let entries = entries
            .iter()
            .filter_map(|entry| dtmf_menu_entry(entry))
            .map(|(keys, language)| (keys.to_owned(), language.to_owned()))
            .collect();
        Self { entries }
    }

    /// Adds a key to what the leg has keyed so far (`pressed`) and returns the language when
    /// the sequence now names one. A key that leads nowhere starts the sequence again.
    pub fn press(&self, pressed: &mut String, digit: &str) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        pressed.push_str(digit);
        if let Some((_, language)) = self.entries.iter().find(|(keys, _)| keys == pressed) {
            pressed.clear();
            return Some(language.clone());
        }
        if !self.entries.iter().any(|(keys, _)| keys.starts_with(pressed.as_str())) {
            pressed.clear();
            // The key may begin a new sequence (`*` after a stray digit).
            if self.entries.iter().any(|(keys, _)| keys.starts_with(digit)) {
                pressed.push_str(digit);
                if let Some((_, language)) = self.entries.iter().find(|(keys, _)| keys == pressed) {
                    pressed.clear();
                    return Some(language.clone());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_give_the_language_and_the_targets() {
        let leg = from_variables(Some(" es-ES "), Some("en, fr,,"));
        assert_eq!(leg.language.as_deref(), Some("es-ES"));
        assert_eq!(leg.targets, ["en", "fr"]);
        assert_eq!(from_variables(Some(""), None), LegLanguage::default());
    }

    #[test]
    fn missing_targets_default_to_the_config_or_the_other_party() {
        let mut config = AriConfig::default();
        let leg = complete(from_variables(Some("es"), None), Some("en"), &config);
        assert_eq!(leg.targets, ["en"]);
        assert!(complete(from_variables(Some("en"), None), Some("en"), &config).targets.is_empty());
        config.default_targets = vec!["de".into()];
        config.default_language = Some("fr".into());
        let leg = complete(LegLanguage::default(), Some("en"), &config);
        assert_eq!((leg.language.as_deref(), leg.targets.as_slice()), (Some("fr"), &["de".to_owned()][..]));
    }

    #[test]
    fn the_menu_matches_sequences_and_recovers_from_stray_keys() {
        let menu = DtmfMenu::new(&["*1=en".into(), "*2=es".into(), "#9=fr".into()]);
        let mut pressed = String::new();
        assert_eq!(menu.press(&mut pressed, "*"), None);
        assert_eq!(menu.press(&mut pressed, "2").as_deref(), Some("es"));
        assert!(pressed.is_empty());
        // A stray digit, then a valid sequence.
        assert_eq!(menu.press(&mut pressed, "5"), None);
        assert_eq!(menu.press(&mut pressed, "*"), None);
        assert_eq!(menu.press(&mut pressed, "*"), None, "a second * restarts the sequence");
        assert_eq!(menu.press(&mut pressed, "1").as_deref(), Some("en"));
        assert_eq!(menu.press(&mut pressed, "#"), None);
        assert_eq!(menu.press(&mut pressed, "9").as_deref(), Some("fr"));
        assert_eq!(DtmfMenu::new(&[]).press(&mut pressed, "*"), None);
    }
}
