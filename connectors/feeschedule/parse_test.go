package feeschedule

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/repricer/repricer/money"
)

const synthHeader = "Code Status,Code,Mod,Max Allowable Fee NFS,Max Allowable Fee FS,PA Req'd,Comments\n"

func parseString(t *testing.T, name, body string) (*Schedule, error) {
	t.Helper()
	return Parse(context.Background(), strings.NewReader(body), name)
}

// TestParseRows feeds one data row after a minimal preamble and header.
func TestParseRows(t *testing.T) {
	type want struct {
		skip     Reason // "" = the row is kept
		nfs, fs  money.Cents
		hasFS    bool
		fsReason Reason
		pa       bool
		column   string
		comments string
		modifier string
	}
	tests := []struct {
		name string
		row  string
		want want
	}{
		{"plain", ",99213,,$38.39,$25.47,,", want{nfs: 3839, fs: 2547, hasFS: true}},
		{"thousands", `,22532,,"$1,066.16","$12,345.00",PA,`, want{nfs: 106616, fs: 1234500, hasFS: true, pa: true}},
		{"no comma thousands", ",22532,,$1066.16,$1066.16,,", want{nfs: 106616, fs: 106616, hasFS: true}},
		{"trailing space and asterisk", ",99213,,$38.39 ,$25.47*,,", want{nfs: 3839, fs: 2547, hasFS: true}},
		{"one decimal", ",99213,,$38.5,$25,,", want{nfs: 3850, fs: 2500, hasFS: true}},
		{"modifier lower case", ",71010,tc,$9.22,$9.22,,", want{nfs: 922, fs: 922, hasFS: true, modifier: "TC"}},
		{"FS bundled", ",A4264,,$550.52,Bundled,EPA,", want{nfs: 55052, fsReason: Bundled, pa: true}},
		{"FS N/A", ",87070,,$9.73,N/A,,", want{nfs: 973, fsReason: NoFee}},
		{"FS zero", ",87070,,$9.73,$0.00,,", want{nfs: 973, fsReason: ZeroFee}},
		{"multi-line PA", ",22532,,$1.00,$1.00,\"CPA Age 21+\nNo PA Age <21\",", want{nfs: 100, fs: 100, hasFS: true, pa: true}},
		{"COE is not PA", ",27130,,$1.00,$1.00,COE,", want{nfs: 100, fs: 100, hasFS: true}},
		{"PA star", ",55970,,$1.00,$1.00,PA*,*PA is required if related", want{nfs: 100, fs: 100, hasFS: true, pa: true, comments: "*PA is required if related"}},
		{"base units", ",00100,,5 Base,5 Base,,", want{skip: NotADollarAmount, column: "Max Allowable Fee NFS"}},
		{"bare number", ",00100,,12.50,12.50,,", want{skip: NotADollarAmount, column: "Max Allowable Fee NFS"}},
		{"by report dotted", ",99199,,B.R.,B.R.,,", want{skip: ByReport, column: "Max Allowable Fee NFS"}},
		{"by report BR", ",99199,,BR,BR,,", want{skip: ByReport, column: "Max Allowable Fee NFS"}},
		{"by report words", ",99199,,By Report,By Report,,", want{skip: ByReport, column: "Max Allowable Fee NFS"}},
		{"acquisition cost", ",A4250,,A.C.,A.C.,,", want{skip: AcquisitionCost, column: "Max Allowable Fee NFS"}},
		{"bundled", ",99000,,Bundled,Bundled,,", want{skip: Bundled, column: "Max Allowable Fee NFS"}},
		{"not covered", ",V2799,,NC,NC,,", want{skip: NotCovered, column: "Max Allowable Fee NFS"}},
		{"currently not covered", ",V2799,,CNC,CNC,,", want{skip: NotCovered, column: "Max Allowable Fee NFS"}},
		{"deleted", ",V2785,,DC,DC,,", want{skip: DeletedCode, column: "Max Allowable Fee NFS"}},
		{"other program", ",99501,,DP,DP,,", want{skip: OtherProgram, column: "Max Allowable Fee NFS"}},
		{"both blank", ",99501,,,,,", want{skip: NoFee, column: "Max Allowable Fee FS"}},
		{"NFS blank FS bundled", ",99501,, ,Bundled,,", want{skip: Bundled, column: "Max Allowable Fee FS"}},
		{"both zero", ",99501,,$0.00,$0.00,,", want{skip: ZeroFee, column: "Max Allowable Fee NFS"}},
		{"bad thousands", `,99213,,"$1,23.45",$1.00,,`, want{skip: Malformed, column: "Max Allowable Fee NFS"}},
		{"bad FS amount", ",99213,,$1.00,$1.2.3,,", want{skip: Malformed, column: "Max Allowable Fee FS"}},
		{"three decimals", ",99213,,$1.234,$1.00,,", want{skip: Malformed, column: "Max Allowable Fee NFS"}},
		{"negative", ",99213,,-$1.00,$1.00,,", want{skip: Malformed, column: "Max Allowable Fee NFS"}},
		{"unknown text", ",99213,,Pending,Pending,,", want{skip: Malformed, column: "Max Allowable Fee NFS"}},
		{"short code", ",9921,,$1.00,$1.00,,", want{skip: Malformed, column: "Code"}},
		{"bad modifier", ",99213,ABC,$1.00,$1.00,,", want{skip: Malformed, column: "Mod"}},
		{"footnote", "* See the provider guide,,,,,,", want{skip: NoCode}},
		{"blank record", ",,,,,,", want{skip: BlankRow}},
		{"short record", ",99213", want{skip: NoFee, column: "Max Allowable Fee FS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseString(t, "x.csv", "\"Effective January 1, 2014\"\n"+synthHeader+tt.row+"\n")
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.skip != "" {
				if len(s.Rows) != 0 || len(s.Skipped) != 1 {
					t.Fatalf("rows %d skipped %d, want one skip", len(s.Rows), len(s.Skipped))
				}
				k := s.Skipped[0]
				if k.Reason != tt.want.skip || k.Column != tt.want.column || k.Line != 3 || k.Record != 3 {
					t.Errorf("skip = %+v, want reason %s column %q line 3", k, tt.want.skip, tt.want.column)
				}
				return
			}
			if len(s.Rows) != 1 || len(s.Skipped) != 0 {
				t.Fatalf("rows %d skipped %+v, want one row", len(s.Rows), s.Skipped)
			}
			r := s.Rows[0]
			if !r.HasNFS || r.NFS != tt.want.nfs || r.HasFS != tt.want.hasFS || r.FSReason != tt.want.fsReason ||
				(tt.want.hasFS && r.FS != tt.want.fs) || r.PARequired != tt.want.pa || r.Modifier != tt.want.modifier ||
				r.Comments != tt.want.comments || r.Line != 3 {
				t.Errorf("row = %+v, want %+v", r, tt.want)
			}
		})
	}
}

func TestParseDuplicates(t *testing.T) {
	body := "\"Effective January 1, 2014\"\n" + synthHeader +
		",99213,,$38.39,$25.47,,\n" +
		",99213,,$59.16,$39.26,,0-20 years of age only\n" +
		",99213,26,$1.00,$1.00,,\n" +
		",99213,,$1.00,$1.00,,second listing\n"
	s, err := parseString(t, "x.csv", body)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 2 {
		t.Fatalf("rows = %d, want 2", len(s.Rows))
	}
	if s.Rows[0].NFS != 3839 {
		t.Errorf("kept NFS %s, want the first row's 38.39", s.Rows[0].NFS)
	}
	want := []Reason{AgeRestricted, DuplicateCode}
	for i, k := range s.Skipped {
		if k.Reason != want[i] || !strings.Contains(k.Detail, "line 3") {
			t.Errorf("skip %d = %+v, want %s referring to line 3", i, k, want[i])
		}
	}
}

func TestEffectiveDate(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		pre     string
		want    string
		from    DateSource
		warn    bool
		updated string
	}{
		{"preamble", "x.csv", "\"Effective April 1, 2015\"\n", "2015-04-01", FromPreamble, false, ""},
		{"preamble abbreviated", "x.csv", "\"Effective: Jan. 1, 2014\"\n", "2014-01-01", FromPreamble, false, ""},
		{"preamble slashes", "x.csv", "Effective 10/1/15\n", "2015-10-01", FromPreamble, false, ""},
		{"preamble wins over name", "physician_070114.csv", "\"Effective January 1, 2014\"\n", "2014-01-01", FromPreamble, true, ""},
		{"preamble agrees with name", "dir/physician_010114.csv", "\"Effective January 1, 2014\"\n\"Updated on October 1, 2014\"\n", "2014-01-01", FromPreamble, false, "2014-10-01"},
		{"name fallback", "physician_100115.csv", "Title row\n", "2015-10-01", FromFileName, false, ""},
		{"name fallback windows path", `C:\fees\physician_040116.csv`, "", "2016-04-01", FromFileName, false, ""},
		{"first effective cell wins", "x.csv", "\"Effective July 1, 2015\"\n\"Effective January 1, 2015\"\n", "2015-07-01", FromPreamble, false, ""},
		{"updated slashes", "x.csv", "\"Effective July 1, 2015\"\nUpdated 8/25/2015\n", "2015-07-01", FromPreamble, false, "2015-08-25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseString(t, tt.file, tt.pre+synthHeader+",99213,,$1.00,$1.00,,\n")
			if err != nil {
				t.Fatal(err)
			}
			if s.Effective.String() != tt.want || s.EffectiveFrom != tt.from || (len(s.Warnings) > 0) != tt.warn || s.Updated.String() != tt.updated {
				t.Errorf("effective %s from %s updated %q warnings %q; want %s from %s updated %q warn %v",
					s.Effective, s.EffectiveFrom, s.Updated, s.Warnings, tt.want, tt.from, tt.updated, tt.warn)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		body   string
		err    error
		line   int
		column string
	}{
		{"empty", "physician_010114.csv", "", ErrNoHeader, 0, ""},
		{"no header", "physician_010114.csv", "a,b,c\n1,2,3\n", ErrNoHeader, 0, ""},
		{"header too late", "physician_010114.csv", strings.Repeat("preamble,,\n", maxPreamble) + synthHeader, ErrNoHeader, 0, ""},
		{"no FS column", "physician_010114.csv", "title\nCode,Mod,Max Allowable Fee NFS\n", ErrMissingColumn, 2, "Max Allowable Fee FS"},
		{"no NFS column", "physician_010114.csv", "Code,Mod,Fee FS\n", ErrMissingColumn, 1, "Max Allowable Fee NFS"},
		{"no date", "fees.csv", synthHeader + ",99213,,$1.00,$1.00,,\n", ErrNoEffectiveDate, 0, ""},
		{"bad name date", "physician_133114.csv", synthHeader, ErrNoEffectiveDate, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, tt.file, tt.body)
			var fe *FileError
			if !errors.Is(err, tt.err) || !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FileError wrapping %v", err, tt.err)
			}
			if fe.File != tt.file || fe.Line != tt.line || fe.Column != tt.column {
				t.Errorf("FileError = %+v, want file %s line %d column %q", fe, tt.file, tt.line, tt.column)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("message %q does not name the file", err)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Parse(ctx, strings.NewReader(synthHeader), "physician_010114.csv")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		_, err := Parse(context.Background(), errReader{}, "physician_010114.csv")
		if !errors.Is(err, ErrRead) || !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want ErrRead wrapping the cause", err)
		}
	})
}

var errBoom = errors.New("boom")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

func TestCSVSyntaxErrorSkipsRecord(t *testing.T) {
	body := "\"Effective January 1, 2014\"\n" + synthHeader +
		",99213,,$1.00,$1.00,,\n" +
		",99214,,$2.00,$2.00,\"bad\"quote,\n" +
		",99215,,$3.00,$3.00,,\n"
	s, err := parseString(t, "x.csv", body)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 2 || len(s.Skipped) != 1 || s.Skipped[0].Reason != Malformed || s.Skipped[0].Line != 4 {
		t.Fatalf("rows %+v skipped %+v; want 99213 and 99215 kept, line 4 MALFORMED", s.Rows, s.Skipped)
	}
}

func TestWindows1252Fields(t *testing.T) {
	// 0x93/0x94 curly quotes, 0x96 en dash, 0xE9 é, 0x80 euro sign.
	body := "\"Effective January 1, 2014\"\n" + synthHeader +
		",99213,,$1.00,$1.00,,\x93Caf\xe9\x94 \x96 \x80 limit\n" +
		",99214,,$1.00,$1.00,,already UTF-8: Café – ok\n"
	s, err := parseString(t, "x.csv", body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Rows[0].Comments, "\u201cCaf\u00e9\u201d \u2013 \u20ac limit"; got != want {
		t.Errorf("cp1252 comment = %q, want %q", got, want)
	}
	if got, want := s.Rows[1].Comments, "already UTF-8: Café – ok"; got != want {
		t.Errorf("utf-8 comment = %q, want %q", got, want)
	}
}

func TestUTF8BOMHeader(t *testing.T) {
	s, err := parseString(t, "physician_010114.csv", "\uFEFFCode,Mod,NFS,FS\n99213,,$1.00,$2.00\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 1 || s.Rows[0].FS != 200 || s.HeaderLine != 1 {
		t.Fatalf("rows = %+v", s.Rows)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("\"Effective January 1, 2014\"\n" + synthHeader + ",99213,,$38.39,$25.47,,\n"))
	f.Add([]byte("Health Care Authority (HCA),,\n\"Effective July 1, 2014\",,\nCode Status Indicator,Code,Mod,Max Allowable Fee NFS,Max Allowable Fee FS,PA Req'd,Global Days,Assist at Surgery,Comments\n,00100,,5 Base,5 Base,,000,N,\nR,22532,,\"$1,053.33\",\"$1,053.33\",\"CPA Age 21+\nNo PA Age <21\",090,Y,\n,A4264,,$550.52,Bundled,EPA,000,N,\n"))
	f.Add([]byte("The Agency\x92s fee,,\n" + synthHeader + ",99213,,B.R.,N/A,,\x93x\x94\n,,,,,,\n"))
	f.Add([]byte(synthHeader + `,99213,,"$1,23.4",$-1,,` + "\n\"unterminated\n"))
	f.Add([]byte("Effective 13/45/2015\nUpdated\nCode,NFS,FS\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"physician_010114.csv", "fees.csv"} {
			s, err := Parse(context.Background(), strings.NewReader(string(data)), name)
			if err != nil {
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v is not a *FileError", err)
				}
				continue
			}
			if s.Effective.IsZero() {
				t.Fatal("schedule without effective date")
			}
			for _, r := range s.Rows {
				if !r.HasNFS && !r.HasFS {
					t.Fatalf("row without a fee: %+v", r)
				}
				if (r.HasNFS && r.NFS <= 0) || (r.HasFS && r.FS <= 0) {
					t.Fatalf("non-positive fee: %+v", r)
				}
			}
			if _, err := ToRates(s, "C1"); err != nil {
				t.Fatal(err)
			}
		}
	})
}
