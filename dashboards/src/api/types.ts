// Section bodies, generated from the server's OpenAPI description (`npm run gen:api`
// rewrites schema.d.ts from /api/openapi.json).
import type { components } from './schema';

type S = components['schemas'];
export type KpiBody = S['Kpi'];
export type EffectivenessBody = S['ConversationEffectiveness'];
export type CustomerLoadBody = S['CustomerLoad'];
export type AgentProductivityBody = S['AgentProductivity'];
export type AgentRow = S['AgentRow'];
export type BusinessImpactBody = S['BusinessImpact'];
export type Money = S['Money'];
export type Campaign = S['Campaign'];
export type RankedAgent = S['RankedAgent'];
export type WhatsappPerformanceBody = S['WhatsappPerformance'];
export type Funnel = WhatsappPerformanceBody['funnel']['current'];
export type AutomationImpactBody = S['AutomationImpact'];
