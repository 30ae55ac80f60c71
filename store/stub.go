package store

import (
	"context"
	"errors"
	"time"
)

var errNotImplemented = errors.New("store: not implemented yet")

func (db *DB) CreateTenantWithOwner(ctx context.Context, tenantName, email, name, passwordHash string) (Tenant, User, error) {
	return Tenant{}, User{}, errNotImplemented
}
func (db *DB) CountUsers(ctx context.Context) (int, error) { return 0, errNotImplemented }
func (db *DB) Tenant(ctx context.Context, id string) (Tenant, error) {
	return Tenant{}, errNotImplemented
}
func (db *DB) TenantBySlug(ctx context.Context, slug string) (Tenant, error) {
	return Tenant{}, errNotImplemented
}
func (db *DB) ListTenants(ctx context.Context) ([]Tenant, error) { return nil, errNotImplemented }
func (db *DB) CreateUser(ctx context.Context, tenantID, email, name string, role Role, passwordHash string) (User, error) {
	return User{}, errNotImplemented
}
func (db *DB) UserByEmail(ctx context.Context, email string) (User, error) {
	return User{}, errNotImplemented
}
func (db *DB) User(ctx context.Context, tenantID, id string) (User, error) {
	return User{}, errNotImplemented
}
func (db *DB) ListUsers(ctx context.Context, tenantID string) ([]User, error) {
	return nil, errNotImplemented
}
func (db *DB) UpdateUserRole(ctx context.Context, tenantID, id string, role Role) error {
	return errNotImplemented
}
func (db *DB) DeleteUser(ctx context.Context, tenantID, id string) error { return errNotImplemented }
func (db *DB) CreateSession(ctx context.Context, s Session) error        { return errNotImplemented }
func (db *DB) SessionByHash(ctx context.Context, hash string) (Session, error) {
	return Session{}, errNotImplemented
}
func (db *DB) DeleteSession(ctx context.Context, hash string) error { return errNotImplemented }
func (db *DB) CreateAPIKey(ctx context.Context, tenantID, name, prefix, keyHash string) (APIKey, error) {
	return APIKey{}, errNotImplemented
}
func (db *DB) APIKeyByHash(ctx context.Context, keyHash string) (APIKey, error) {
	return APIKey{}, errNotImplemented
}
func (db *DB) ListAPIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	return nil, errNotImplemented
}
func (db *DB) RevokeAPIKey(ctx context.Context, tenantID, id string) error { return errNotImplemented }
func (db *DB) CreatePosition(ctx context.Context, p Position) (Position, error) {
	return Position{}, errNotImplemented
}
func (db *DB) Position(ctx context.Context, tenantID, id string) (Position, error) {
	return Position{}, errNotImplemented
}
func (db *DB) ListPositions(ctx context.Context, tenantID string) ([]Position, error) {
	return nil, errNotImplemented
}
func (db *DB) UpdatePosition(ctx context.Context, p Position) (Position, error) {
	return Position{}, errNotImplemented
}
func (db *DB) CreateCandidate(ctx context.Context, c Candidate) (Candidate, error) {
	return Candidate{}, errNotImplemented
}
func (db *DB) Candidate(ctx context.Context, tenantID, id string) (Candidate, error) {
	return Candidate{}, errNotImplemented
}
func (db *DB) ListCandidates(ctx context.Context, tenantID string) ([]Candidate, error) {
	return nil, errNotImplemented
}
func (db *DB) CreateInterview(ctx context.Context, iv Interview, inviteTokenHash string) (Interview, error) {
	return Interview{}, errNotImplemented
}
func (db *DB) Interview(ctx context.Context, tenantID, id string) (Interview, error) {
	return Interview{}, errNotImplemented
}
func (db *DB) ListInterviews(ctx context.Context, tenantID string, f InterviewFilter) ([]Interview, error) {
	return nil, errNotImplemented
}
func (db *DB) InterviewByInviteHash(ctx context.Context, hash string) (Interview, error) {
	return Interview{}, errNotImplemented
}
func (db *DB) InterviewByID(ctx context.Context, id string) (Interview, error) {
	return Interview{}, errNotImplemented
}
func (db *DB) SetInterviewStatus(ctx context.Context, tenantID, id string, to Status, from ...Status) (Interview, error) {
	return Interview{}, errNotImplemented
}
func (db *DB) SetConsent(ctx context.Context, tenantID, id string, at time.Time) error {
	return errNotImplemented
}
func (db *DB) SetProcessorTokenHash(ctx context.Context, tenantID, interviewID, hash string) error {
	return errNotImplemented
}
func (db *DB) ProcessorTokenHash(ctx context.Context, interviewID string) (tenantID, hash string, err error) {
	return "", "", errNotImplemented
}
func (db *DB) RecordHeartbeat(ctx context.Context, tenantID, interviewID string, mediaMS int64, at time.Time) error {
	return errNotImplemented
}
func (db *DB) SetRecording(ctx context.Context, tenantID, interviewID, relPath string) error {
	return errNotImplemented
}
func (db *DB) ListStaleInterviews(ctx context.Context, before time.Time) ([]Interview, error) {
	return nil, errNotImplemented
}
func (db *DB) CreateMachine(ctx context.Context, m Machine) (Machine, error) {
	return Machine{}, errNotImplemented
}
func (db *DB) UpdateMachine(ctx context.Context, m Machine) error { return errNotImplemented }
func (db *DB) CurrentMachine(ctx context.Context, tenantID, interviewID string) (Machine, error) {
	return Machine{}, errNotImplemented
}
func (db *DB) LatestMachine(ctx context.Context, tenantID, interviewID string) (Machine, error) {
	return Machine{}, errNotImplemented
}
func (db *DB) ListMachines(ctx context.Context, tenantID, interviewID string) ([]Machine, error) {
	return nil, errNotImplemented
}
func (db *DB) ListLiveMachines(ctx context.Context) ([]Machine, error) { return nil, errNotImplemented }
func (db *DB) MachineSeconds(ctx context.Context, tenantID string, since time.Time) (float64, error) {
	return 0, errNotImplemented
}
func (db *DB) AppendEntries(ctx context.Context, tenantID, interviewID string, es []Entry) (inserted []Entry, err error) {
	return nil, errNotImplemented
}
func (db *DB) Entries(ctx context.Context, tenantID, interviewID string, afterSeq int64) ([]Entry, error) {
	return nil, errNotImplemented
}
func (db *DB) LastSeq(ctx context.Context, tenantID, interviewID string) (int64, error) {
	return 0, errNotImplemented
}
func (db *DB) AppendEvent(ctx context.Context, tenantID, interviewID, typ string, data any) (Event, error) {
	return Event{}, errNotImplemented
}
func (db *DB) Events(ctx context.Context, tenantID, interviewID string) ([]Event, error) {
	return nil, errNotImplemented
}
func (db *DB) SetSecret(ctx context.Context, tenantID, name, value string) error {
	return errNotImplemented
}
func (db *DB) Secret(ctx context.Context, tenantID, name string) (string, error) {
	return "", errNotImplemented
}
func (db *DB) Secrets(ctx context.Context, tenantID string) (map[string]string, error) {
	return nil, errNotImplemented
}
func (db *DB) ListSecrets(ctx context.Context, tenantID string) ([]SecretInfo, error) {
	return nil, errNotImplemented
}
func (db *DB) DeleteSecret(ctx context.Context, tenantID, name string) error {
	return errNotImplemented
}
