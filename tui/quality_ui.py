"""The app's side of the quality check (issue 10): the background check, the sidebar
line, ``d`` (duplicates review) and ``F`` (exclude every flagged image of a kind).

A mixin of :class:`~picksel.tui.app.PickselApp`, kept out of app.py so that module only
wires keys. The check runs in a thread worker when an album opens (after its index is
loaded or built); its result lives in the curator (``Curator.quality``) and reaches the
panes through the view model like every other mark. Nothing is ever excluded by the
check itself: only ``F`` and the review's keys exclude, each as one undoable change.
"""

from __future__ import annotations

import contextlib
import time

from textual import work
from textual.css.query import NoMatches

from picksel.errors import Cancelled, PickselError
from picksel.quality import DEFECT_FLAGS, FLAGS
from picksel.tui.messages import QualityFinished, QualityProgress

ALL_DEFECTS = "defects"
DUPLICATE_COPIES = "copies"


class QualityActions:
    """Mixed into PickselApp (uses its curator, sidebar, notify, _edit, _changed)."""

    quality_job = None  # the running QualityJob
    _quality_token = 0
    _quality_pct = -1
    QUALITY_PROGRESS_EVERY = 0.25

    # ------------------------------------------------------------------ the check

    def _say(self, text: str) -> None:
        """The sidebar's quality line; nothing while the app is closing."""
        with contextlib.suppress(NoMatches):
            self.sidebar.show_quality(text)  # type: ignore[attr-defined]

    def start_quality(self) -> None:
        """Check the open album in a worker (cancelling a check still running)."""
        c = self.curator  # type: ignore[attr-defined]
        self.cancel_quality()
        if c is None or c.n == 0:
            self._say("")  # type: ignore[attr-defined]
            return
        self._quality_token += 1
        self._quality_pct = -1
        self.quality_job = c.quality_job()
        self._checked_with = self.quality_job.overrides
        self._say("checking quality…")  # type: ignore[attr-defined]
        self._run_quality(self.quality_job, self._quality_token)

    _quality_overrides: dict | None = None  # the state's thresholds of the shown result
    _checked_with: dict | None = None  # … of the running check

    def recheck_if_thresholds_changed(self) -> None:
        """state.json was reloaded (``picksel check --set`` in another shell): the flags
        follow the new thresholds (the measures are cached, so this takes a second)."""
        c = self.curator  # type: ignore[attr-defined]
        if c is None or c.quality is None and self.quality_job is None:
            return
        wanted = dict(c.state.quality)
        current = self._checked_with if self.quality_job is not None else self._quality_overrides
        if wanted != current:
            self.start_quality()

    def cancel_quality(self) -> None:
        if self.quality_job is not None:
            self.quality_job.cancel_event.set()
            self.quality_job = None

    @work(thread=True, exclusive=True, group="quality")
    def _run_quality(self, job, token: int) -> None:
        last = [-1.0]

        def progress(done: int, total: int, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= self.QUALITY_PROGRESS_EVERY or done >= total:
                last[0] = now
                self.post_message(QualityProgress(done, total, message))  # type: ignore[attr-defined]

        post = self.post_message  # type: ignore[attr-defined]
        try:
            result = job.run(progress)
        except Cancelled:
            post(QualityFinished(token, cancelled=True))
        except (PickselError, OSError) as e:
            post(QualityFinished(token, error=str(e)))
        except Exception as e:  # noqa: BLE001 - report, never crash the app
            post(QualityFinished(token, error=f"{type(e).__name__}: {e}"))
        else:
            post(QualityFinished(token, result=result))

    def on_quality_progress(self, msg: QualityProgress) -> None:
        if self.quality_job is None or msg.total <= 0:
            return
        pct = int(msg.done * 100 / msg.total)
        if pct != self._quality_pct:
            self._quality_pct = pct
            self._say(f"checking… {pct}%")  # type: ignore[attr-defined]

    def on_quality_finished(self, msg: QualityFinished) -> None:
        if msg.token != self._quality_token:
            return  # a check of an album state that is gone (re-indexed meanwhile)
        self.quality_job = None
        c = self.curator  # type: ignore[attr-defined]
        if msg.cancelled or c is None:
            self._say("quality check cancelled")  # type: ignore[attr-defined]
            return
        if msg.error:
            self._say("quality check failed")  # type: ignore[attr-defined]
            self.notify(f"Quality check failed: {msg.error}", severity="warning", timeout=10)  # type: ignore[attr-defined]
            return
        c.quality = msg.result
        self._quality_overrides = self._checked_with
        if not self.screen_stack:  # type: ignore[attr-defined]
            return  # closing
        self._tell_cache_problem(msg.result.cache_problem)
        self.refresh_view()  # type: ignore[attr-defined]
        self._schedule_preview()  # type: ignore[attr-defined]
        for screen in self.screen_stack:  # type: ignore[attr-defined]
            if hasattr(screen, "quality_ready"):
                screen.quality_ready()

    def tell_marks_changed(self) -> None:
        """After a redraw: screens showing keepers (the review) follow the pins too."""
        for screen in self.screen_stack:  # type: ignore[attr-defined]
            if hasattr(screen, "marks_changed"):
                screen.marks_changed()

    _told_cache_problem: str | None = None

    def _tell_cache_problem(self, problem: str | None) -> None:
        """Say once that the measures cannot be cached (the flags shown are right; the
        next check measures again), and again only if the reason changes."""
        if problem and problem != self._told_cache_problem:
            self.notify(problem[0].upper() + problem[1:], title="quality.npz not saved",  # type: ignore[attr-defined]
                        severity="warning", timeout=15)
        self._told_cache_problem = problem

    def quality_line(self) -> str:
        c = self.curator  # type: ignore[attr-defined]
        if self.quality_job is not None:
            return f"checking… {max(self._quality_pct, 0)}%"
        if c is None or c.quality is None:
            return ""
        return c.quality.summary()

    def _need_quality(self):
        c = self._need_album()  # type: ignore[attr-defined]
        if c is None:
            return None
        if c.quality is None:
            why = "still running (see the sidebar)" if self.quality_job is not None else "not available"
            self.notify(f"The quality check is {why}.", severity="warning")  # type: ignore[attr-defined]
            return None
        return c

    # ------------------------------------------------------------------ F: exclude a kind

    def action_exclude_flagged(self) -> None:
        c = self._need_quality()
        if c is None:
            return
        q = c.quality
        counts = q.counts()
        options = [(f, f, counts[f]) for f in FLAGS]
        defects = int(q.flagged_mask(set(DEFECT_FLAGS)).sum())
        options.append((ALL_DEFECTS, "all defects (not grayscale, odd-aspect)", defects))
        options.append((DUPLICATE_COPIES, "duplicate copies (each group keeps one)",
                        len(q.copy_rows())))
        self.push_screen(FlagChoiceScreen(options), self._exclude_kind)  # type: ignore[attr-defined]

    def found_rels(self, kind: str) -> tuple[list[str], str, str]:
        """(paths, what they are, journal action) for a kind chosen under F."""
        c = self.curator  # type: ignore[attr-defined]
        q = c.quality
        if kind == DUPLICATE_COPIES:
            rows = q.copy_rows()
            return [c.rel(r) for r in rows], "duplicate copies", "F duplicate copies"
        wanted = set(DEFECT_FLAGS) if kind == ALL_DEFECTS else {kind}
        rows = [int(r) for r in q.flagged_mask(wanted).nonzero()[0]]
        label = "/".join(f for f in FLAGS if f in wanted)
        return [c.rel(r) for r in rows], f"images flagged {label}", f"F flagged {label}"

    def _exclude_kind(self, kind: str | None) -> None:
        c = self.curator  # type: ignore[attr-defined]
        if kind is None or c is None or c.quality is None:
            return
        rels, what, action = self.found_rels(kind)
        ex, pins = c.state.excluded, c.state.pins
        new = [r for r in rels if r not in ex and r not in pins]
        if not new:
            self.notify(f"Nothing to exclude: the {len(rels)} {what} are excluded or pinned already.")  # type: ignore[attr-defined]
            return
        n = len(new)
        if n > self.CONFIRM_OVER or n > 0.1 * c.n:  # type: ignore[attr-defined]
            question = (f"Exclude {n:,} {what} ({n * 100 / max(c.n, 1):.0f}% of the album)?\n"
                        "(u undoes it afterwards)")
            self.push_screen(  # type: ignore[attr-defined]
                ConfirmScreen(question, yes=f"Exclude {n:,}"),
                lambda ok: self._exclude_rels(rels, what, action) if ok else self.notify("Nothing excluded"),  # type: ignore[attr-defined]
            )
            return
        self._exclude_rels(rels, what, action)

    def _exclude_rels(self, rels: list[str], what: str, action: str) -> None:
        c = self.curator  # type: ignore[attr-defined]
        done = self._edit(c.exclude_found, rels, action)  # type: ignore[attr-defined]
        if done is None:
            return
        changed, pinned = done
        kept = f"; {len(pinned)} pinned left alone" if pinned else ""
        self._changed(f"Excluded {changed} of {len(rels)} {what}{kept}"  # type: ignore[attr-defined]
                      + (self.UNDO_HINT if changed else ""))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ d: review

    def action_duplicates(self) -> None:
        c = self._need_quality()
        if c is None:
            return
        if not c.quality.groups:
            self.notify("No duplicates found in this album.")  # type: ignore[attr-defined]
            return
        start = 0
        row = self.current_row  # type: ignore[attr-defined]
        if row is not None and c.quality.group[row]:
            start = int(c.quality.group[row]) - 1
        self.push_screen(DuplicatesScreen(start, self.graphics.value))  # type: ignore[attr-defined]

    def keep_in_group(self, keep: int, others: list[int]) -> str | None:
        """For the review: keep row ``keep``, exclude rows ``others``; the message said."""
        c = self.curator  # type: ignore[attr-defined]
        done = self._edit(c.keep_one, c.rel(keep), [c.rel(r) for r in others],  # type: ignore[attr-defined]
                          f"d keep {c.rel(keep)}")
        if done is None:
            return None
        changed, pinned = done
        kept = f"; {len(pinned)} pinned left alone" if pinned else ""
        msg = f"Kept {c.rel(keep)}, excluded {changed} cop{'ies' if changed != 1 else 'y'}{kept}"
        self._changed(msg + (self.UNDO_HINT if changed else ""))  # type: ignore[attr-defined]
        return msg


# imported late: the screens import widgets that import the app's siblings
from picksel.tui.screens.confirm import ConfirmScreen  # noqa: E402
from picksel.tui.screens.duplicates import DuplicatesScreen, FlagChoiceScreen  # noqa: E402
