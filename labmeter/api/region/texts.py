"""Every word the regional report prints, Italian by default, English on request: its labels
(the site report's where they are the same, ``report/texts.py``), the definitions of every
regional figure and indicator, and what the before and after comparison can and cannot show."""

from __future__ import annotations

from labmeter.api.region.model import RegionReport
from labmeter.api.report.texts import TEXT as REPORT_TEXT
from labmeter.api.report.texts import Lang, moment, num, pct

TEXT: dict[str, tuple[str, str]] = {
    "title": ("Rapporto regionale di utilizzo", "Regional utilisation report"),
    "r1": ("1. Le Fondazioni a confronto", "1. The Foundations side by side"),
    "r2": ("2. Per tipo di attrezzatura", "2. Per kind of equipment"),
    "r3": ("3. Prima e dopo il metodo «laboratorio aperto»",
           "3. Before and after the open-lab method"),
    "r4": ("4. Saturazione e inutilizzo", "4. Saturation and idleness"),
    "r5": ("5. Indicatori dei programmi di finanziamento", "5. Funding programme indicators"),
    "r6": ("6. Definizioni e metodo", "6. Definitions and method"),
    "name": ("Fondazione", "Foundation"),
    "kinds": ("Utilizzo per Fondazione e tipo di attrezzatura", "Use per Foundation and kind"),
    "sites_use": ("Utilizzo per Fondazione", "Use per Foundation"),
    "sites_users": ("Utenza per Fondazione", "Users per Foundation"),
    "ranking": ("Graduatoria (solo Fondazioni con copertura sufficiente)",
                "Ranking (Foundations with sufficient coverage only)"),
    "apart": ("Non in graduatoria: copertura del monitoraggio sotto la soglia",
              "Not ranked: monitoring coverage below the threshold"),
    "rank": ("Posizione", "Rank"),
    "rank_outside": ("Posizione per quota esterna", "Rank by external share"),
    "region": ("Regione", "Region"),
    "all_funds": ("Tutti i fondi", "Every fund"),
    "labs": ("Laboratori", "Labs"),
    "organisations": ("Organizzazioni esterne", "Outside organisations"),
    "cost_window": ("Costo nel periodo (€)", "Cost in the period (€)"),
    "role": ("Ruolo", "Role"),
    "pilot": ("pilota", "pilot"),
    "control": ("controllo", "control"),
    "apart_role": ("esclusa (copertura)", "left out (coverage)"),
    "pooled": ("controlli insieme", "controls pooled"),
    "baseline": ("Prima", "Before"),
    "after": ("Dopo", "After"),
    "change": ("Variazione", "Change"),
    "interval": ("Intervallo", "Interval"),
    "metric": ("Indicatore", "Figure"),
    "did": ("Differenza nelle differenze (pilota meno controlli)",
            "Difference in differences (pilot minus controls)"),
    "users_per_week": ("Utenti distinti per settimana", "Distinct users per week"),
    "organisations_per_week": ("Organizzazioni esterne per settimana",
                               "Outside organisations per week"),
    "change_use": ("Tasso di utilizzo e quota esterna", "Utilisation and external share"),
    "change_people": ("Utenti e organizzazioni", "Users and organisations"),
    "labs_load": ("Saturazione per laboratorio e tipo", "Saturation per lab and kind"),
    "full_h": ("Ore di apertura con tutti i beni occupati", "Opening hours with every device busy"),
    "full_share": ("Quota di ore piene", "Share of full hours"),
    "peak_busy": ("Picco beni occupati insieme", "Most devices busy at once"),
    "peak_busy_share": ("Picco / beni", "Peak / devices"),
    "bookings_in_full": ("Prenotazioni in ore piene", "Bookings in full hours"),
    "devices": ("Beni", "Devices"),
    "open_h": ("Ore di apertura", "Opening hours"),
    "licences_load": ("Licenze: picco postazioni e licenze possedute",
                      "Licences: peak seats and seats owned"),
    "idle": ("Beni sotto la soglia di utilizzo per tutto il periodo",
             "Assets below the low-use threshold over the whole window"),
    "purchase_cost": ("Costo d'acquisto (€)", "Purchase cost (€)"),
    "funds": ("Indicatori per fondo e Fondazione", "Indicators per fund and Foundation"),
    "users_year": ("Utenti distinti {year}", "Distinct users {year}"),
    "external_h": ("Ore di utilizzo esterno", "External hours in use"),
    "external_per_1000": ("Ore esterne per 1.000 € di beni", "External hours per €1,000 of assets"),
    "cost_per_external": ("Costo per ora esterna (€)", "Cost per external hour (€)"),
    "semesters": ("Indicatori per semestre (finestre di rendicontazione ReGiS)",
                  "Indicators per six-monthly window (ReGiS reporting)"),
    "semester": ("Semestre", "Half-year"),
    "durability": ("Utilizzo mensile nel periodo di stabilità dell'operazione",
                   "Monthly use within the durability period"),
    "durability_summary": ("Periodo di stabilità: mesi del periodo con utilizzo misurato",
                           "Durability period: months of the window with measured use"),
    "months": ("Mesi", "Months"),
    "months_used": ("Mesi con utilizzo", "Months with use"),
    "first_month": ("Primo mese", "First month"),
    "definitions": ("Definizioni", "Definitions"),
    "caveats": ("Che cosa il confronto può e non può mostrare",
                "What the comparison can and cannot show"),
    "no_comparison": (
        "Nessun confronto prima e dopo: indicare --pilot-site con --change o con --baseline "
        "e --pilot.",
        "No before and after comparison: give --pilot-site with --change or with --baseline "
        "and --pilot.",
    ),
    "unregistered": ("Dispositivi non inventariati (esclusi)", "Unregistered devices (left out)"),
    "chart_sites": ("Tasso di utilizzo e copertura per Fondazione",
                    "Utilisation and coverage per Foundation"),
    "chart_change": ("Quota esterna prima e dopo, per Fondazione",
                     "External share before and after, per Foundation"),
}  # fmt: skip

CAVEATS = {
    "pilot_low_coverage": (
        "La Fondazione pilota ha una copertura del monitoraggio sotto la soglia: le sue "
        "variazioni possono riflettere agenti spenti più che l'uso.",
        "The pilot Foundation's monitoring coverage is below the threshold: its changes may "
        "reflect agents that were down rather than use.",
    ),
    "no_controls": (
        "Nessuna altra Fondazione ha copertura sufficiente: manca il controllo, e la "
        "variazione della pilota non si distingue da stagioni e festività.",
        "No other Foundation has sufficient coverage: there is no control, and the pilot's "
        "change cannot be told apart from seasons and holidays.",
    ),
    "few_units": (
        "Meno di 8 settimane in una delle due finestre: l'intervallo è poco affidabile.",
        "Fewer than 8 weeks in one of the windows: the interval is unreliable.",
    ),
    "closed_weeks": (
        "Le settimane in cui nessun laboratorio era aperto (festività, chiusure) sono escluse.",
        "Weeks in which no lab was open (holidays, closures) are left out.",
    ),
}


def t(key: str, lang: Lang) -> str:
    it, en = TEXT[key] if key in TEXT else REPORT_TEXT[key]
    return it if lang is Lang.it else en


def caveats(report: RegionReport, lang: Lang) -> list[str]:
    """What the comparison can and cannot show: always the general limits, then what this
    report's data add (a pilot with poor coverage, no control, few weeks, closed weeks)."""
    c = report["comparison"]
    it = lang is Lang.it
    out = [
        "Il confronto mostra la variazione alla Fondazione pilota tra le due finestre e la "
        "stessa variazione alle altre Fondazioni nelle stesse settimane; la differenza tra le "
        "due (differenza nelle differenze) toglie ciò che è comune a tutte: stagioni, "
        "festività, calendario scolastico. Resta valida solo se, senza il metodo, la pilota "
        "sarebbe cambiata come le altre: un evento locale (un nuovo corso, un guasto, una "
        "chiusura della sola pilota) non si distingue dall'effetto del metodo."
        if it
        else "The comparison shows the change at the pilot Foundation between the two windows "
        "and the same change at the other Foundations over the same weeks; their difference "
        "(difference in differences) removes what is common to all: seasons, holidays, the "
        "school calendar. It holds only if, without the method, the pilot would have changed "
        "as the others did: a local event (a new course, a breakdown, a closure of the pilot "
        "alone) cannot be told apart from the method's effect.",
        "Intervallo bootstrap: si ricampionano le settimane con reinserimento, le stesse per "
        "tutte le Fondazioni, con seme dichiarato; è un intervallo percentile. Misura "
        "l'incertezza dovuta alla variabilità tra settimane, non gli errori di misura degli "
        "agenti: una copertura bassa resta un limite anche con un intervallo stretto."
        if it
        else "Bootstrap interval: weeks are resampled with replacement, the same weeks for "
        "every Foundation, with a stated seed; it is a percentile interval. It measures the "
        "uncertainty from week-to-week variation, not the agents' measurement errors: low "
        "coverage remains a limit even with a narrow interval.",
    ]
    if c is not None:
        out += [CAVEATS[code][0 if it else 1] for code in c["caveats"] if code in CAVEATS]
    return out


def method(report: RegionReport, lang: Lang) -> list[str]:
    """Every definition and threshold of the regional figures."""
    th = report["thresholds"]
    it = lang is Lang.it
    c = report["comparison"]
    items = [
        "Ogni cifra per Fondazione e per tipo usa le definizioni del rapporto di utilizzo di "
        "ciascuna sede: tasso di utilizzo = ore di utilizzo in orario ÷ ore disponibili; "
        "copertura = ore osservate in orario ÷ ore disponibili; quota esterna = ore di "
        "utilizzo di scuole, imprese e agenzie formative ÷ ore di utilizzo; sessioni e utenti "
        "distinti dagli pseudonimi; costo per ora = costo dei beni nel periodo "
        "(ammortamento e costi di esercizio) ÷ ore di utilizzo. I valori della Regione sono "
        "le somme delle Fondazioni (le ore) e le unioni dei loro utenti e organizzazioni."
        if it
        else "Every figure per Foundation and per kind uses the definitions of each site's "
        "utilisation report: utilisation = hours in use within opening hours ÷ available "
        "hours; coverage = hours observed within opening hours ÷ available hours; external "
        "share = hours in use by schools, companies and training agencies ÷ hours in use; "
        "sessions and distinct users from the pseudonyms; cost per hour = the assets' cost "
        "in the period (depreciation and running costs) ÷ hours in use. The Region's figures "
        "are the Foundations' sums (hours) and the unions of their users and organisations.",
        f"Graduatoria: solo le Fondazioni con copertura del monitoraggio di almeno il "
        f"{pct(th['min_coverage'], lang, 0)}; le altre sono elencate a parte con la loro "
        "copertura, perché un tasso misurato su poco tempo osservato non è confrontabile."
        if it
        else f"Ranking: only Foundations with monitoring coverage of at least "
        f"{pct(th['min_coverage'], lang, 0)}; the others are listed apart with their coverage, "
        "since a rate measured over little observed time is not comparable.",
        f"Saturazione: un bene è occupato in un'ora se in uso per almeno "
        f"{num(th['busy_hour_s'] / 60, lang, 0)} minuti; un'ora di apertura è piena per un "
        "tipo di attrezzatura di un laboratorio quando tutti i suoi beni di quel tipo sono "
        "occupati. Picco = il massimo di beni di quel tipo occupati nella stessa ora di "
        "apertura (risoluzione oraria: i riepiloghi tengono le ore, non i minuti). Licenze: "
        "picco di postazioni con il programma aperto nello stesso minuto ÷ licenze possedute."
        if it
        else f"Saturation: a device is busy in an hour it was in use for at least "
        f"{num(th['busy_hour_s'] / 60, lang, 0)} minutes; an opening hour is full for a kind "
        "of equipment in a lab when every device of that kind there is busy. Peak = the most "
        "devices of the kind busy in the same opening hour (hourly resolution: the rollups "
        "keep hours, not minutes). Licences: peak seats with the program open in the same "
        "minute ÷ seats owned.",
        f"Inutilizzo: beni con tasso di utilizzo sotto il {pct(th['underused_below'], lang, 0)} "
        "sull'intero periodo, con il loro costo nel periodo."
        if it
        else f"Idleness: assets whose utilisation over the whole window is below "
        f"{pct(th['underused_below'], lang, 0)}, with their cost in the window.",
        "Utenti distinti per anno solare (come l'indicatore RCR71 del FESR): pseudonimi "
        "distinti delle sessioni iniziate nell'anno sui beni del fondo nella Fondazione; uno "
        "pseudonimo conta una volta l'anno anche se ha usato più laboratori della stessa "
        "Fondazione. Gli pseudonimi sono per Fondazione: la stessa persona in due Fondazioni "
        "conta in entrambe. Partecipanti FSE+ = utenti distinti dei beni FSE+; imprese = "
        "organizzazioni della categoria imprese venute su prenotazione (la dimensione PMI non "
        "è registrata)."
        if it
        else "Distinct users per calendar year (as ERDF's RCR71): distinct pseudonyms of the "
        "sessions begun in the year on the fund's assets at the Foundation; a pseudonym counts "
        "once a year even if it used several labs of the same Foundation. Pseudonyms are per "
        "Foundation: one person at two Foundations counts at both. ESF+ participants = distinct "
        "users of ESF+ assets; companies = organisations of the company category that came on "
        "a booking (SME status is not recorded).",
        "Ore esterne per 1.000 € = ore di utilizzo delle categorie esterne sui beni del fondo "
        "÷ (costo d'acquisto dei beni ÷ 1.000); costo per ora esterna = costo dei beni nel "
        "periodo ÷ ore esterne. Semestri: gennaio-giugno e luglio-dicembre (ora locale), "
        "limitati al periodo del rapporto, come le finestre di rendicontazione del PNRR in "
        "ReGiS."
        if it
        else "External hours per €1,000 = hours in use by outside categories on the fund's "
        "assets ÷ (the assets' purchase cost ÷ 1,000); cost per external hour = the assets' "
        "cost in the period ÷ external hours. Half-years: January-June and July-December "
        "(local time), clipped to the report's window, as the PNRR's reporting windows in "
        "ReGiS.",
        f"Stabilità (art. 65 del Regolamento (UE) 2021/1060): {th['durability_years']} anni dal "
        "saldo (senza saldo: dal collaudo); per ogni bene, l'utilizzo misurato mese per mese "
        "dal collaudo, nei mesi del periodo del rapporto che cadono nel periodo di stabilità."
        if it
        else f"Durability (Article 65 of Regulation (EU) 2021/1060): {th['durability_years']} "
        "years from the final payment (without one: from the acceptance test); per asset, its "
        "measured use month by month from its acceptance test, in the months of the report's "
        "window within the durability period.",
    ]
    if c is not None:
        before = _span(report, c["baseline_start_ms"], c["baseline_end_ms"], lang)
        after = _span(report, c["pilot_start_ms"], c["pilot_end_ms"], lang)
        items.append(
            f"Prima e dopo: finestre {before} e {after}; unità = settimana "
            f"di calendario ({c['baseline_units']} e {c['pilot_units']}); bootstrap con seme "
            f"{c['seed']}, {num(c['resamples'], lang, 0)} ricampionamenti, intervallo al "
            f"{pct(c['confidence'], lang, 0)}. Utenti e organizzazioni per settimana = media "
            "settimanale dei distinti. Controlli: le altre Fondazioni con copertura sufficiente "
            "in entrambe le finestre, prese insieme settimana per settimana: ore sommate (i "
            "tassi sono tassi dell'insieme), utenti e organizzazioni in media per Fondazione."
            if it
            else f"Before and after: windows {before} and {after}; unit = calendar "
            f"week ({c['baseline_units']} and {c['pilot_units']}); bootstrap with seed "
            f"{c['seed']}, {num(c['resamples'], lang, 0)} resamples, "
            f"{pct(c['confidence'], lang, 0)} interval. Users and organisations per week = the "
            "weekly mean of the distinct ones. Controls: the other Foundations with sufficient "
            "coverage over both windows, taken together week by week: hours summed (rates are "
            "the group's rates), users and organisations averaged per Foundation."
        )
    return items


def _span(report: RegionReport, a: int, b: int, lang: Lang) -> str:
    tz = report["meta"]["timezone"]
    return f"{moment(a, lang, tz)} - {moment(b, lang, tz)}"


def period_line(report: RegionReport, lang: Lang) -> str:
    meta = report["meta"]
    tz = meta["timezone"]
    label = "Periodo" if lang is Lang.it else "Period"
    made = "Generato il" if lang is Lang.it else "Generated on"
    return (
        f"{label}: {moment(meta['start_ms'], lang, tz)} - {moment(meta['end_ms'], lang, tz)} "
        f"({tz}). {made} {moment(meta['generated_ms'], lang, tz)}, labmeter {meta['labmeter']}."
    )
