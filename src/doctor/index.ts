export { createDoctorService, diagnose } from './doctor.ts';
export type { DoctorReport, DoctorService, DoctorStep } from './doctor.ts';
