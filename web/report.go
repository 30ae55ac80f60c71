package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/fonts"
)

// reportData is everything the PDF report shows of one interview.
type reportData struct {
	Interview store.Interview
	Candidate store.Candidate
	Position  store.Position
	Entries   []store.Entry
	Scorecard *scorecardJSON // nil when there is none yet
	Reviews   []reviewJSON
}

func (s *Server) handleReportPDF(c echo.Context) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	iv, err := s.db.Interview(ctx, tenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	d := reportData{Interview: iv}
	if d.Candidate, err = s.db.Candidate(ctx, tenantID, iv.CandidateID); err != nil {
		return fmt.Errorf("report: candidate: %w", err)
	}
	if d.Position, err = s.db.Position(ctx, tenantID, iv.PositionID); err != nil {
		return fmt.Errorf("report: position: %w", err)
	}
	if d.Entries, err = s.db.Entries(ctx, tenantID, iv.ID, 0); err != nil {
		return notFound(err, "interview")
	}
	store.InMediaOrder(d.Entries)
	if err := s.addReportExtras(c, &d); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeReportPDF(&buf, d); err != nil {
		return fmt.Errorf("report of interview %s: %w", iv.ID, err)
	}
	attachment(c, "report-"+iv.ID+".pdf")
	return c.Blob(http.StatusOK, "application/pdf", buf.Bytes())
}

// writeReportPDF renders d as an A4 document in DejaVu Sans (embedded, so
// every script the font covers prints as itself).
func writeReportPDF(w *bytes.Buffer, d reportData) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Interview report", true)
	pdf.SetCreator("Candor", true)
	pdf.AddUTF8FontFromBytes("dejavu", "", fonts.Sans)
	pdf.AddUTF8FontFromBytes("dejavu", "B", fonts.SansBold)
	pdf.SetAutoPageBreak(true, 15)
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("dejavu", "", 8)
		pdf.SetTextColor(120, 120, 120)
		pdf.CellFormat(0, 5, fmt.Sprintf("Candor · %s · page %d/{nb}", d.Interview.ID, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	const lh = 5.5
	heading := func(text string, size float64) {
		pdf.SetFont("dejavu", "B", size)
		pdf.SetTextColor(20, 20, 20)
		pdf.MultiCell(0, size*0.5, text, "", "L", false)
		pdf.Ln(1.5)
	}
	body := func() {
		pdf.SetFont("dejavu", "", 10)
		pdf.SetTextColor(30, 30, 30)
	}
	field := func(label, value string) {
		pdf.SetFont("dejavu", "B", 10)
		pdf.CellFormat(32, lh, label, "", 0, "L", false, 0, "")
		body()
		pdf.MultiCell(0, lh, value, "", "L", false)
	}

	heading("Interview report", 18)
	field("Candidate", d.Candidate.Name)
	field("Email", d.Candidate.Email)
	field("Position", d.Position.Title)
	field("Status", string(d.Interview.Status))
	date, duration := "not started", "—"
	if d.Interview.StartedAt != nil {
		date = d.Interview.StartedAt.UTC().Format("2 January 2006, 15:04 UTC")
		if d.Interview.EndedAt != nil && d.Interview.Status.Terminal() {
			duration = d.Interview.EndedAt.Sub(*d.Interview.StartedAt).Round(time.Second).String()
		}
	}
	field("Date", date)
	field("Duration", duration)
	pdf.Ln(4)

	heading("Scorecard", 14)
	body()
	switch sc := d.Scorecard; {
	case sc == nil:
		pdf.MultiCell(0, lh, "No scorecard.", "", "L", false)
	case sc.Status != scorecardReady:
		pdf.MultiCell(0, lh, fmt.Sprintf("Scorecard %s (evaluator: %s).", sc.Status, sc.Evaluator), "", "L", false)
	default:
		if sc.Overall != nil {
			field("Overall", fmt.Sprintf("%.2f / 5 · %s", sc.Overall.Score, sc.Overall.Recommendation))
			body()
			pdf.MultiCell(0, lh, sc.Overall.Summary, "", "L", false)
			pdf.Ln(2)
		}
		for _, cr := range sc.Criteria {
			pdf.SetFont("dejavu", "B", 10)
			pdf.MultiCell(0, lh, fmt.Sprintf("%s — %d/5 (weight %g)", cr.Name, cr.Score, cr.Weight), "", "L", false)
			body()
			pdf.MultiCell(0, lh, cr.Rationale, "", "L", false)
			for _, ev := range cr.Evidence {
				pdf.SetTextColor(80, 80, 80)
				pdf.MultiCell(0, lh, fmt.Sprintf("  #%d “%s”", ev.Seq, ev.Quote), "", "L", false)
			}
			if len(cr.Evidence) == 0 {
				pdf.SetTextColor(150, 60, 0)
				pdf.MultiCell(0, lh, "  No evidence quoted.", "", "L", false)
			}
			body()
			pdf.Ln(1.5)
		}
	}
	pdf.Ln(3)

	heading("Reviews", 14)
	body()
	if len(d.Reviews) == 0 {
		pdf.MultiCell(0, lh, "No reviews.", "", "L", false)
	}
	for _, r := range d.Reviews {
		overall := "—"
		if r.Overall != nil {
			overall = fmt.Sprintf("%.2f / 5", *r.Overall)
		}
		pdf.SetFont("dejavu", "B", 10)
		pdf.MultiCell(0, lh, fmt.Sprintf("%s: %s · %s", r.Reviewer.Name, overall, r.Recommendation), "", "L", false)
		body()
		for _, cr := range r.Criteria {
			line := fmt.Sprintf("  %s: %d/5", cr.Name, cr.Score)
			if cr.Note != "" {
				line += " — " + cr.Note
			}
			pdf.MultiCell(0, lh, line, "", "L", false)
		}
		if r.Note != "" {
			pdf.MultiCell(0, lh, "  "+r.Note, "", "L", false)
		}
		pdf.Ln(1.5)
	}
	pdf.Ln(3)

	heading("Transcript", 14)
	body()
	if len(d.Entries) == 0 {
		pdf.MultiCell(0, lh, "No transcript.", "", "L", false)
	}
	for _, e := range d.Entries {
		pdf.SetFont("dejavu", "B", 10)
		pdf.SetTextColor(60, 60, 60)
		pdf.CellFormat(32, lh, fmt.Sprintf("%s %s", fmtMediaClock(e.StartMS), speakerLabel(e.Speaker)), "", 0, "L", false, 0, "")
		body()
		pdf.MultiCell(0, lh, strings.Join(cueLines(e.Text), " "), "", "L", false)
	}
	if err := pdf.Error(); err != nil {
		return err
	}
	return pdf.Output(w)
}

// addReportExtras adds the scorecard and reviews to d.
func (s *Server) addReportExtras(c echo.Context, d *reportData) error {
	sc, err := s.scorecardOf(c.Request().Context(), d.Interview, d.Entries)
	if err != nil {
		return err
	}
	d.Scorecard = &sc
	rs, err := s.db.Reviews(c.Request().Context(), d.Interview.TenantID, d.Interview.ID)
	if err != nil {
		return notFound(err, "interview")
	}
	for _, r := range rs {
		d.Reviews = append(d.Reviews, toReviewJSON(r))
	}
	return nil
}
