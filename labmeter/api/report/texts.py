"""Every word the report prints, Italian by default (1.234,5 and 26/11/2026), English on
request: the labels, and the methodology prose that states every definition and threshold
the figures use."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the report's model imports nothing from here, but stay clear of cycles
    from collections.abc import Sequence

    from labmeter.api.report.model import DeviceRef, Report


class Lang(StrEnum):
    it = "it"
    en = "en"


TEXT: dict[str, tuple[str, str]] = {
    "title": ("Rapporto di utilizzo", "Utilisation report"),
    "period": ("Periodo", "Period"),
    "generated": ("Generato il", "Generated on"),
    "s1": ("1. Quadro di riferimento", "1. Funding framework"),
    "s2": ("2. Inventario", "2. Inventory"),
    "s3": ("3. Disponibilità", "3. Availability"),
    "s4": ("4. Utilizzo per attrezzatura", "4. Use per piece of equipment"),
    "s5": ("5. Utenza", "5. Users"),
    "s6": ("6. Apertura", "6. Openness"),
    "s7": ("7. Efficienza", "7. Efficiency"),
    "s8": ("8. Evidenze e metodo", "8. Evidence and method"),
    "s9": ("9. Conclusioni", "9. Conclusions"),
    "fund": ("Fondo", "Fund"),
    "call": ("Avviso / atto", "Call / act"),
    "cup": ("CUP", "CUP"),
    "assets": ("Beni", "Assets"),
    "cost": ("Costo (€)", "Cost (€)"),
    "final_payment": ("Saldo", "Final payment"),
    "durability_until": ("Stabilità fino al", "Durability until"),
    "retention_until": ("Conservazione fino al", "Keep evidence until"),
    "pnrr_note": (
        "Beni PNRR: solo uso non commerciale.",
        "PNRR assets: non-commercial use only.",
    ),
    "device": ("Bene", "Asset"),
    "site": ("Sede", "Site"),
    "lab": ("Laboratorio", "Lab"),
    "kind": ("Tipo", "Kind"),
    "description": ("Descrizione", "Description"),
    "purchased": ("Acquisto", "Purchase"),
    "collaudo": ("Collaudo", "Acceptance test"),
    "hours": ("Orario dichiarato", "Declared opening hours"),
    "closures": ("Chiusure", "Closures"),
    "available_h": ("Ore disponibili", "Available hours"),
    "in_use_h": ("Ore di utilizzo", "Hours in use"),
    "observed_h": ("Ore osservate", "Observed hours"),
    "in_use_open_h": ("Ore di utilizzo in orario", "Hours in use within opening hours"),
    "after_hours_h": ("Ore fuori orario", "Hours outside opening hours"),
    "observed_open_h": ("Ore osservate in orario", "Observed hours within opening hours"),
    "utilisation": ("Tasso di utilizzo", "Utilisation"),
    "coverage": ("Copertura del monitoraggio", "Monitoring coverage"),
    "sessions": ("Sessioni", "Sessions"),
    "alarm_h": ("Ore in allarme", "Hours in alarm"),
    "setup_h": ("Ore di attrezzaggio (ISO 22400 AUST)", "Hours in setup (ISO 22400 AUST)"),
    "off_h": ("Ore spento", "Hours off"),
    "per_lab": ("Per laboratorio", "Per lab"),
    "licences": ("Licenze software", "Software licences"),
    "app": ("Software", "Software"),
    "peak_seats": ("Picco postazioni", "Peak seats"),
    "seats_owned": ("Licenze possedute", "Seats owned"),
    "peak_share": ("Picco / licenze", "Peak / seats"),
    "category": ("Categoria", "Category"),
    "share": ("Quota", "Share"),
    "quota_esterna": ("Quota esterna", "External share"),
    "month": ("Mese", "Month"),
    "cost_per_hour": ("Costo per ora di utilizzo (€)", "Cost per hour of use (€)"),
    "trend": ("Andamento mensile del tasso di utilizzo", "Monthly utilisation"),
    "openness_trend": ("Quota esterna per mese", "External share per month"),
    "by_category": ("Ore di utilizzo per categoria", "Hours in use by category"),
    "agent_versions": ("Versioni degli agenti", "Agent versions"),
    "version": ("Versione", "Version"),
    "gaps": ("Lacune", "Gaps"),
    "definitions": ("Definizioni e soglie", "Definitions and thresholds"),
    "manager_signature": ("Responsabile del laboratorio", "Lab manager"),
    "sign_name": ("Nome e cognome", "Name"),
    "sign_date": ("Data", "Date"),
    "sign_here": ("Firma", "Signature"),
    "sources": ("Fonti dei dati", "Data sources"),
    "unregistered": ("Dispositivi non inventariati", "Unregistered devices"),
    "underused": ("Beni sottoutilizzati", "Under-used assets"),
    "crosscheck": (
        "Protocollo «in uso» mentre la pinza amperometrica dice «spenta»",
        "Protocol 'in use' while the current clamp says 'off'",
    ),
    "risks": (
        "Uso commerciale dichiarato di beni PNRR (da prenotazioni commerciali)",
        "Declared commercial use of PNRR assets (from commercial bookings)",
    ),
    "company_use": (
        "Uso di beni PNRR da parte di imprese senza prenotazione commerciale (non è uso "
        "commerciale dichiarato)",
        "Companies' use of PNRR assets without a commercial booking (not declared commercial use)",
    ),
    "open_h": ("Ore di apertura del programma", "Hours the program was open"),
    "outside_organisations": ("Organizzazioni esterne", "Outside organisations"),
    "external_sessions": ("Sessioni di utenti esterni", "Sessions of outside users"),
    "bookings": ("Prenotazioni e utilizzo misurato", "Bookings against measured use"),
    "bookings_n": ("Prenotazioni", "Bookings"),
    "booked_h": ("Ore-bene prenotate", "Booked asset-hours"),
    "used_share": ("Quota utilizzata", "Share used"),
    "no_show": ("Mancata presenza", "No-show"),
    "no_shows": ("Mancate presenze", "No-shows"),
    "yes": ("sì", "yes"),
    "no": ("no", "no"),
    "unbooked_h": ("Ore di utilizzo senza prenotazione", "Hours in use outside bookings"),
    "booked_in_use_h": ("Ore di utilizzo in prenotazione", "Hours in use within bookings"),
    "by_declared_category": ("Prenotato e utilizzato per categoria", "Booked and used by category"),
    "by_organisation": (
        "Prenotato e utilizzato per organizzazione",
        "Booked and used by organisation",
    ),
    "reference": ("Riferimento (convenzione)", "Reference (agreement)"),
    "feeds": ("Calendari di prenotazione remoti", "Booking feeds"),
    "feed_age_h": ("Età della copia usata (ore)", "Age of the copy used (hours)"),
    "feed_error": ("Ultimo errore", "Last error"),
    "costs": ("Costo per ora di utilizzo per bene", "Cost per hour of use per asset"),
    "useful_life": ("Vita utile (anni)", "Useful life (years)"),
    "depreciation": ("Ammortamento nel periodo (€)", "Depreciation in the period (€)"),
    "running": (
        "Costi di esercizio e licenze nel periodo (€)",
        "Running and licence costs in the period (€)",
    ),
    "total_cost": ("Costo nel periodo (€)", "Cost in the period (€)"),
    "hours_used": ("Ore di utilizzo / apertura", "Hours in use / open"),
    "costs_per_lab": ("Costo per ora per laboratorio", "Cost per hour per lab"),
    "costs_per_fund": ("Costo per ora per fondo", "Cost per hour per fund"),
    "no_collaudo": (
        "senza collaudo: ammortamento non calcolato",
        "no acceptance test: no depreciation counted",
    ),
    "none": ("nessuno", "none"),
    "na": ("n/d", "n/a"),
    "total": ("Totale", "Total"),
    "its_student": ("Studenti ITS", "ITS students"),
    "school": ("Scuole secondarie", "Secondary schools"),
    "company": ("Imprese", "Companies"),
    "training_agency": ("Agenzie formative", "Training agencies"),
    "staff": ("Personale", "Staff"),
    "unknown": ("Non identificati", "Unidentified"),
    # The lab register (api/register_pdf.py)
    "register": ("Registro di utilizzo", "Lab use register"),
    "start": ("Inizio", "Start"),
    "end": ("Fine", "End"),
    "pseudonym": ("Pseudonimo", "Pseudonym"),
    "organisation": ("Organizzazione (prenotazione)", "Organisation (booking)"),
    "activity": ("Attività", "Activity"),
    "unbooked": ("non prenotato", "not booked"),
    "day_totals": ("Totali del giorno", "The day's totals"),
    "users": ("Utenti distinti", "Distinct users"),
    "sessions_users": (
        "Sessioni e utenti distinti per categoria",
        "Sessions and distinct users per category",
    ),
    "sessions_per_lab": (
        "Sessioni e utenti distinti per laboratorio (sessioni per categoria)",
        "Sessions and distinct users per lab (sessions per category)",
    ),
    "booked_sessions": ("Sessioni in una prenotazione", "Sessions within a booking"),
    "signature": (
        "Il tecnico di laboratorio (nome e cognome) ______________________________\n\n"
        "Data ______________          Firma ______________________________",
        "Lab technician (name) ______________________________\n\n"
        "Date ______________          Signature ______________________________",
    ),
    "register_note": (
        "Sessioni misurate dagli agenti labmeter; gli utenti compaiono solo come pseudonimi "
        "(HMAC calcolato sull'agente) e categoria. Orari locali ({tz}).",
        "Sessions measured by labmeter's agents; users appear only as pseudonyms (an HMAC "
        "computed on the agent) and category. Local times ({tz}).",
    ),
}

WEEKDAYS = {
    Lang.it: ("lun", "mar", "mer", "gio", "ven", "sab", "dom"),
    Lang.en: ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def t(key: str, lang: Lang) -> str:
    it, en = TEXT[key]
    return it if lang is Lang.it else en


def num(value: float | None, lang: Lang, decimals: int = 1) -> str:
    """1.234,5 in Italian, 1,234.5 in English; ``n/d`` for a missing value."""
    if value is None:
        return t("na", lang)
    text = f"{value:,.{decimals}f}"
    if lang is Lang.it:
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def pct(value: float | None, lang: Lang, decimals: int = 1) -> str:
    if value is None:
        return t("na", lang)
    return f"{num(value * 100, lang, decimals)} %"


def day(value: date | None, lang: Lang) -> str:
    if value is None:
        return t("na", lang)
    return value.strftime("%d/%m/%Y") if lang is Lang.it else value.isoformat()


def moment(ms: int, lang: Lang, tz: str) -> str:
    local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return local.strftime("%d/%m/%Y %H:%M" if lang is Lang.it else "%Y-%m-%d %H:%M")


def _years(value: float, lang: Lang) -> str:
    return num(value, lang, 0 if value == int(value) else 1)


def method(report: Report, lang: Lang) -> list[str]:
    """Every definition and threshold the figures use, one item each, from the settings in
    force for this report (thresholds, useful lives, the rollups read, the bookings' feeds)."""
    th = report["evidence"]["thresholds"]
    ev = report["evidence"]
    meta = report["meta"]
    ext = ", ".join(t(c, lang) for c in ev["external_categories"])
    lives = ", ".join(f"{k} {_years(v, lang)}" for k, v in sorted(th["useful_life_years"].items()))
    rolled = meta["rolled_until_ms"]
    it = lang is Lang.it
    until = moment(rolled, lang, meta["timezone"]) if rolled is not None else ""
    items = [
        (
            "Fonte: campioni degli agenti labmeter via MQTT (uno per intervallo di "
            "campionamento di ciascun agente), scritti in InfluxDB dal collector; "
            + (
                f"fino al {until} si leggono i riepiloghi mensili, giornalieri e orari "
                "calcolati dal collector, per il tempo restante e per i bordi non allineati i "
                "campioni grezzi."
                if rolled is not None
                else "si leggono i campioni grezzi (nessun riepilogo disponibile)."
            )
            if it
            else "Source: labmeter agents' samples over MQTT (one per sampling interval of each "
            "agent), written to InfluxDB by the collector; "
            + (
                f"up to {until} monthly, daily and hourly rollups computed by the collector are "
                "read, raw samples for the rest and for unaligned edges."
                if rolled is not None
                else "raw samples are read (no rollups available)."
            )
        ),
        "Ore di utilizzo: secondi in stato «in uso» riportati dall'agente (PC: sessione "
        "interattiva non bloccata con input entro la soglia di inattività configurata "
        "sull'agente e annunciata nel suo evento di avvio, o applicazione di catalogo attiva; "
        "macchine: lavorazione in corso)."
        if it
        else "Hours in use: seconds in state 'in use' reported by the agent (PCs: an unlocked "
        "interactive session with input within the idle threshold configured on the agent and "
        "announced in its start event, or a catalogued application busy; machines: a job "
        "running).",
        "Ore disponibili: orario di apertura dichiarato del laboratorio, meno chiusure e "
        "festività nazionali (compresi Pasquetta e il patrono della sede)."
        if it
        else "Available hours: the lab's declared opening hours minus closures and national "
        "public holidays (Easter Monday and the site's patron saint included).",
        "Tasso di utilizzo = ore di utilizzo in orario di apertura ÷ ore disponibili; i "
        "fermi restano al denominatore. L'uso fuori orario è riportato a parte come «ore fuori "
        "orario» e non entra nel tasso, che non supera mai il 100 %; conta invece nella quota "
        "esterna e nel costo per ora."
        if it
        else "Utilisation = hours in use within opening hours ÷ available hours; downtime stays "
        "in the denominator. Use outside opening hours is reported apart as 'hours outside "
        "opening hours' and never enters utilisation, which cannot exceed 100 %; it does count "
        "in the external share and cost per hour.",
        "Copertura del monitoraggio = ore osservate dagli agenti in orario di apertura ÷ ore "
        "disponibili. Il tempo non osservato (agente spento, rete assente) non è mai contato "
        "come inattività né come utilizzo."
        if it
        else "Monitoring coverage = hours observed by the agents within opening hours ÷ "
        "available hours. Unobserved time (agent down, no network) is never counted as idle "
        "nor as in use.",
        "Stati delle macchine in rete secondo OPC 40001-1 (OPC UA for Machinery): Executing "
        "con modo Processing = in uso; Executing con Setup o Maintenance = attrezzaggio; "
        "programma interrotto o sospeso = in pausa; NotExecuting = inattiva; OutOfService "
        "(guasto, allarme, arresto di emergenza) = allarme; NotAvailable (spenta) = spenta; "
        "nessun dato = non osservato. Grandezze ISO 22400-2 (OPC 40001-1, Allegato C), con "
        "l'orario di apertura come calendario operativo: tempo pianificato (PBT) = ore "
        "disponibili; tempo effettivo di produzione (APT) = ore di utilizzo in orario; tempo "
        "di attrezzaggio (AUST) = ore di attrezzaggio; disponibilità ISO 22400-2 = APT ÷ PBT, "
        "cioè il tasso di utilizzo. Ritardi, fermi e manutenzione preventiva richiedono gli "
        "ordini di un MES e non sono riportati. Dove una pinza amperometrica controlla la "
        "macchina, i secondi in cui il protocollo dice «in uso» e la pinza «spenta» sono "
        "segnalati."
        if it
        else "Networked machines' states after OPC 40001-1 (OPC UA for Machinery): Executing "
        "in mode Processing = in use; Executing in Setup or Maintenance = setup; a program "
        "interrupted or held = paused; NotExecuting = idle; OutOfService (fault, alarm, "
        "emergency stop) = alarm; NotAvailable (switched off) = off; no data = unobserved. "
        "ISO 22400-2 figures (OPC 40001-1, Annex C), the opening hours being the operation "
        "calendar: planned busy time (PBT) = available hours; actual production time (APT) = "
        "hours in use within opening hours; actual unit setup time (AUST) = hours in setup; "
        "ISO 22400-2 availability = APT ÷ PBT, that is utilisation. Delay, down and "
        "preventive maintenance times need an MES's orders and are not given. Where a current "
        "clamp checks a machine, seconds in which its protocol says 'in use' while the clamp "
        "says 'off' are flagged.",
        f"Quota esterna = ore di utilizzo di {ext} ÷ ore di utilizzo totali."
        if it
        else f"External share = hours in use by {ext} ÷ all hours in use.",
        "Licenze software: ore in cui il programma è rimasto aperto; picco postazioni = "
        "massimo, sui minuti del periodo, dei dispositivi con il programma aperto nello "
        "stesso minuto."
        if it
        else "Software licences: hours the program was open; peak seats = the most devices "
        "with the program open in the same minute.",
        "Sessioni: eventi di inizio e fine sessione dell'agente, altrimenti campioni "
        "consecutivi di un bene con lo stesso pseudonimo (HMAC calcolato sull'agente), con "
        f"scarto massimo di {num(th['session_gap_tolerance_s'], lang, 0)} s. Una sessione "
        "conta una volta, nel giorno in cui inizia; gli utenti distinti sono gli pseudonimi "
        "distinti delle sessioni del periodo."
        if it
        else "Sessions: the agent's session start and end events, else consecutive samples of "
        "one asset with the same pseudonym (HMAC computed on the agent), at most "
        f"{num(th['session_gap_tolerance_s'], lang, 0)} s apart. A session counts once, on "
        "the day it begins; distinct users are the distinct pseudonyms of the period's "
        "sessions.",
        "Costo per ora di utilizzo = (ammortamento a quote costanti dal collaudo sulla vita "
        "utile del tipo di bene, più i costi annui di esercizio e di licenza, ripartiti per "
        "giorni) ÷ ore di utilizzo nel periodo (per le licenze: ore di apertura del programma). "
        f"Vita utile in anni: {lives or t('none', lang)}. Senza data di collaudo l'ammortamento "
        "non è calcolato. Il costo di un anno è la somma di quello dei suoi mesi."
        if it
        else "Cost per hour of use = (straight-line depreciation from the acceptance test over "
        "the useful life of the asset's kind, plus yearly running and licence costs, spread by "
        "days) ÷ hours in use in the period (licences: hours the program was open). Useful "
        f"life in years: {lives or t('none', lang)}. Without an acceptance test date no "
        "depreciation is counted. A year costs the sum of its months.",
        f"Soglie: sottoutilizzo sotto il {pct(th['underused_below'], lang, 0)}; copertura del "
        f"monitoraggio insufficiente sotto il {pct(th['low_coverage_below'], lang, 0)}; "
        f"stabilità {th['durability_years']} anni dal saldo; conservazione delle evidenze "
        f"{th['retention_years']} anni."
        if it
        else f"Thresholds: under-used below {pct(th['underused_below'], lang, 0)}; "
        f"insufficient monitoring coverage below {pct(th['low_coverage_below'], lang, 0)}; "
        f"durability {th['durability_years']} years after final payment; evidence kept "
        f"{th['retention_years']} years.",
    ]
    if th["no_show_below"] is not None:
        items.append(
            "Prenotazioni (calendari iCalendar e CSV): quota utilizzata = ore di utilizzo dei "
            "beni prenotati durante la prenotazione ÷ ore-bene prenotate; mancata presenza "
            f"sotto il {pct(th['no_show_below'], lang, 0)}. Uso senza prenotazione = utilizzo "
            "fuori da ogni prenotazione che copre il bene. È uso commerciale solo quello "
            "svolto durante una prenotazione dichiarata commerciale (con il suo riferimento); "
            "l'uso da parte di imprese senza tale prenotazione è riportato a parte."
            if it
            else "Bookings (iCalendar and CSV calendars): share used = hours in use of the "
            "booked assets during the booking ÷ booked asset-hours; a no-show below "
            f"{pct(th['no_show_below'], lang, 0)}. Use outside bookings = use outside every "
            "booking that covers the asset. Commercial use is only use during a booking "
            "declared commercial (with its reference); companies' use without one is "
            "reported apart."
        )
    items.append(
        "Nessun nome, badge o titolo di finestra lascia l'agente: solo categorie e pseudonimi."
        if it
        else "No name, badge id or window title leaves the agent: only categories and pseudonyms."
    )
    return items + fingerprint_items(report, lang)


REASONS = {
    "period_closed": ("in un periodo già chiuso", "inside a closed period"),
    "too_old": ("più vecchi dell'orizzonte dei dati tardivi", "older than the late-data horizon"),
}


def fingerprint_items(report: Report, lang: Lang) -> list[str]:
    """The report's fingerprint and what the collectors refused while its window ran."""
    fp, tz = report["evidence"]["fingerprint"], report["meta"]["timezone"]
    it = lang is Lang.it
    settings = ", ".join(f"{k} = {v}" for k, v in sorted(fp["settings"].items()))
    inventory = fp["inventory_sha256"] or ("nessuno" if it else "none")
    if it:
        items = [
            f"Impronta: {period_line(report, lang)} Inventario SHA-256 {inventory}; labmeter "
            f"{fp['labmeter']}; impostazioni: {settings}."
        ]
    else:
        items = [
            f"Fingerprint: {period_line(report, lang)} Inventory SHA-256 {inventory}; labmeter "
            f"{fp['labmeter']}; settings: {settings}."
        ]
    closed = fp["closed"]
    if closed is not None:
        span = f"{moment(closed['start_ms'], lang, tz)} - {moment(closed['end_ms'], lang, tz)}"
        digest = closed["manifest_sha256"]
        if closed["state"] == "closed" and it:
            items.append(
                f"Periodo chiuso {span}: nessun dato vi è più accettato; manifesto del "
                f"pacchetto di evidenze SHA-256 {digest}."
            )
        elif closed["state"] == "closed":
            items.append(
                f"Closed period {span}: no data is accepted in it any more; evidence package "
                f"manifest SHA-256 {digest}."
            )
        elif it:
            items.append(f"Periodo {span} in chiusura: questo rapporto è nel suo pacchetto.")
        else:
            items.append(f"Period {span} being closed: this report is in its package.")
    refused = report["evidence"]["refused"]
    if refused:
        parts = "; ".join(
            f"{n} {REASONS[r][0 if it else 1] if r in REASONS else r}"
            for r, n in sorted(refused.items())
        )
        lead = "Messaggi rifiutati dal collector nel periodo" if it else "Messages refused"
        items.append(f"{lead}: {parts}.")
    return items


def device_items(
    items: Sequence[DeviceRef], lang: Lang, values: Sequence[float | None] = ()
) -> list[str]:
    """site/lab/device of each listed asset, with its figure when ``values`` are given."""
    shown = [f" ({pct(v, lang)})" for v in values] or [""] * len(items)
    return [f"{i['site']}/{i['lab']}/{i['device']}{v}" for i, v in zip(items, shown, strict=True)]


def conclusions(report: Report, lang: Lang) -> list[tuple[str, list[str]]]:
    """Section 9: each heading with its list of assets."""
    c = report["conclusions"]
    return [
        (
            t("underused", lang),
            device_items(c["underused"], lang, [u["utilisation"] for u in c["underused"]]),
        ),
        (
            t("gaps", lang),
            device_items(c["low_coverage"], lang, [g["coverage"] for g in c["low_coverage"]]),
        ),
        (
            t("risks", lang),
            [
                f"{u['site']}/{u['lab']}/{u['asset']} ({u['device']}): "
                f"{num(u['in_use_s'] / 3600, lang, 2)} h, {u['organisation']}, {u['reference']}"
                for u in c["commercial_use"]
            ],
        ),
        (
            t("company_use", lang),
            [
                f"{u['site']}/{u['lab']}/{u['device']}: {num(u['in_use_s'] / 3600, lang, 2)} h"
                for u in c["company_without_commercial_booking"]
            ],
        ),
        (
            t("crosscheck", lang),
            [
                f"{x['site']}/{x['lab']}/{x['device']}: {num(x['conflict_s'] / 3600, lang, 2)} h"
                for x in c["crosscheck"]
            ],
        ),
    ]


def period_line(report: Report, lang: Lang) -> str:
    meta = report["meta"]
    tz = meta["timezone"]
    return (
        f"{t('period', lang)}: {moment(meta['start_ms'], lang, tz)} - "
        f"{moment(meta['end_ms'], lang, tz)} ({tz}). {t('generated', lang)} "
        f"{moment(meta['generated_ms'], lang, tz)}, labmeter {meta['labmeter']}."
    )
